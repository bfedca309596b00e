import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Db, openPostgres } from "../../../src/server/db";
import { startTestPostgres, type TestPostgres } from "../../support/postgres";

/**
 * Connections PostgreSQL ends on its side (a restart, an administrator's pg_terminate_backend): pg reports
 * them as 'error' events, which crash the process unless someone listens. The coordinator must drop the
 * connection, fail at most the request that was using it, and carry on.
 */
describe("openPostgres when the server ends a connection", () => {
  let cluster: TestPostgres;
  let admin: pg.Client;
  const dbs: Db[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  beforeAll(async () => {
    cluster = await startTestPostgres();
    admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    // Vitest would report an uncaught exception too, but only after the test; collect them to assert on.
    process.on("uncaughtException", onUncaught);
  }, 120_000);
  afterAll(async () => {
    process.removeListener("uncaughtException", onUncaught);
    for (const db of dbs) await db.close();
    await admin?.end();
    await cluster?.stop();
  }, 60_000);

  function open(): { db: Db; errors: Error[] } {
    const errors: Error[] = [];
    const db = openPostgres(cluster.url(), { onConnectionError: (error) => errors.push(error) });
    dbs.push(db);
    return { db, errors };
  }

  /** Ends the backend `pid` and waits until pg has seen its connection close. */
  async function terminate(pid: number, errors: Error[]): Promise<void> {
    const seen = errors.length;
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    for (let i = 0; i < 200 && errors.length === seen; i++) await new Promise((r) => setTimeout(r, 10));
  }

  it("drops an idle pooled connection the server ended and opens a new one for the next query", async () => {
    const { db, errors } = open();
    const [before] = await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");

    await terminate(before?.pid as number, errors);
    const [after] = await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");

    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/terminating connection/)]);
    expect(after?.pid).not.toBe(before?.pid);
    expect(uncaught).toEqual([]);
  });

  it("rolls back a transaction whose connection the server ended, without crashing, and serves the next one", async () => {
    const { db, errors } = open();
    await db.exec("CREATE TABLE notes (n integer)");

    const failed = db.transaction(async (tx) => {
      await tx.query("INSERT INTO notes VALUES (1)");
      const [row] = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await terminate(row?.pid as number, errors);
      await tx.query("INSERT INTO notes VALUES (2)");
    });

    await expect(failed).rejects.toThrow();
    expect(errors.length).toBeGreaterThan(0);
    expect(uncaught).toEqual([]);
    await db.transaction((tx) => tx.query("INSERT INTO notes VALUES (3)"));
    expect(await db.query("SELECT n FROM notes")).toEqual([{ n: 3 }]);
  });
});
