import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EnrollResponse, UploadResponse } from "../../../src/core/protocol";
import { type Db, openPostgres } from "../../../src/server/db";
import { runMigrations } from "../../../src/server/migrations";
import { Storage } from "../../../src/server/storage";
import { startTestPostgres, type TestPostgres } from "../../support/postgres";
import { federationWithSites, knownDelta, testApp, updateBody, upload } from "./helpers";
import { deadlinePlan, fakeClock, globalPlusMean, MINUTE, modelOf } from "./rounds-helpers";

/**
 * The round lifecycle on a real PostgreSQL, where several pools (coordinators) run transactions at once:
 * every update before the deadline counts, and a deadline closes a round exactly once whoever notices it.
 */
describe("round lifecycle on PostgreSQL", () => {
  let cluster: TestPostgres;
  const dbs: Db[] = [];
  const closers: (() => Promise<void>)[] = [];
  let databases = 0;

  beforeAll(async () => {
    cluster = await startTestPostgres();
  }, 120_000);
  afterAll(async () => {
    for (const close of closers) await close();
    for (const db of dbs) await db.close();
    await cluster?.stop();
  }, 60_000);

  /** `count` coordinators (a pool, a Storage and an app each) on one fresh database, all on `clock`. */
  async function coordinators(count: number, clock: { now: number }) {
    const url = await cluster.createDatabase(`fedward_rounds_${++databases}`);
    return Promise.all(
      Array.from({ length: count }, async () => {
        const db = openPostgres(url);
        dbs.push(db);
        await runMigrations(db);
        const storage = new Storage(db, undefined, { now: () => clock.now });
        const app = testApp(storage);
        closers.push(() => app.close());
        return { db, storage, app };
      }),
    );
  }

  it("counts every one of 9 concurrent uploads before the deadline, with a quorum of 6, in one aggregate", async () => {
    // Prepare
    const clock = fakeClock();
    const [{ storage, app }] = (await coordinators(1, clock)) as [
      Awaited<ReturnType<typeof coordinators>>[0],
    ];
    const { federation, sites } = await federationWithSites(app, storage, deadlinePlan({ minSites: 6 }), 9);
    const deltas = sites.map((_, i) => knownDelta(i - 4));
    const global = await modelOf(app, sites[0] as EnrollResponse, 0);

    // Execute
    const responses = await Promise.all(
      sites.map((site, i) => upload(app, site, 1, updateBody(1, deltas[i] as Float32Array))),
    );

    // Assert
    expect(responses.map((r) => r.statusCode)).toEqual(sites.map(() => 202));
    const replies = responses.map((r) => r.json<UploadResponse>());
    expect(replies.filter((r) => r.aggregated)).toHaveLength(1);
    expect(replies.map((r) => r.updatesThisRound).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await modelOf(app, sites[0] as EnrollResponse, 1)).toEqual(globalPlusMean(global, deltas));
    expect(await storage.getFederation(federation.id)).toMatchObject({ currentRound: 2 });
  });

  it("closes a round at its deadline exactly once when two coordinators and a late upload notice it together", async () => {
    // Prepare: two coordinators on one database; a and b sent, c is late.
    const clock = fakeClock();
    const [one, two] = (await coordinators(2, clock)) as [
      Awaited<ReturnType<typeof coordinators>>[0],
      Awaited<ReturnType<typeof coordinators>>[0],
    ];
    const { federation, sites } = await federationWithSites(one.app, one.storage, deadlinePlan(), 3);
    const [a, b, c] = sites as [EnrollResponse, EnrollResponse, EnrollResponse];
    const global = await modelOf(one.app, a, 0);
    const deltas = [knownDelta(1), knownDelta(-2)];
    await upload(one.app, a, 1, updateBody(1, deltas[0] as Float32Array));
    await upload(two.app, b, 1, updateBody(1, deltas[1] as Float32Array));

    // Execute: past the deadline, both clocks, state polls on both and c's upload, all at once.
    clock.advance(10 * MINUTE);
    const [late] = await Promise.all([
      upload(two.app, c, 1, updateBody(1, knownDelta(5))),
      one.storage.settleDueRounds(),
      two.storage.settleDueRounds(),
      ...[one, two, one, two].map((k, i) =>
        k.storage.getState(federation.id, (sites[i % 3] as EnrollResponse).siteId),
      ),
    ]);

    // Assert
    expect(late?.statusCode).toBe(409);
    expect(await one.storage.getModelVersions(federation.id)).toEqual([0, 1]);
    expect(await modelOf(two.app, a, 1)).toEqual(globalPlusMean(global, deltas));
    const rounds = await one.db.query<{ round: number; close_reason: string | null }>(
      "SELECT round, close_reason FROM rounds WHERE federation_id = $1 ORDER BY round",
      [federation.id],
    );
    expect(rounds).toEqual([
      { round: 1, close_reason: "deadline" },
      { round: 2, close_reason: null },
    ]);
  });
});
