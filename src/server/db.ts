import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";

/**
 * The little SQL surface storage needs, so the same queries run on embedded PGlite (one process, a
 * directory on disk) and on PostgreSQL (several coordinators, managed backups). Both drivers return
 * int4 as number, jsonb as parsed JSON, bytea as Uint8Array and timestamptz as Date; counts are cast to
 * int in SQL because pg returns bigint as a string.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  /** One statement with $1… parameters. */
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Runs fn in BEGIN … COMMIT; any throw rolls everything back and is rethrown. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Embedded PostgreSQL persisted in `dir`, or in memory when `dir` is undefined (tests). */
export async function openPglite(dir?: string): Promise<Db> {
  if (dir !== undefined) await mkdir(dir, { recursive: true });
  const lite = dir === undefined ? await PGlite.create() : await PGlite.create(dir);
  return {
    kind: "pglite",
    query: async <T extends Row>(sql: string, params: unknown[] = []) =>
      (await lite.query<T>(sql, params)).rows,
    exec: async (sql) => {
      await lite.exec(sql);
    },
    // PGlite has a single connection and its transaction() holds a mutex, so transactions never overlap.
    transaction: (fn) =>
      lite.transaction((tx) =>
        fn({
          query: async <T extends Row>(sql: string, params: unknown[] = []) =>
            (await tx.query<T>(sql, params)).rows,
          exec: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
    close: () => lite.close(),
  };
}

export interface PostgresOptions {
  /**
   * Told about a connection that failed on the server's side (PostgreSQL restarted, an administrator
   * ended the session, the network dropped it). The connection is discarded and a later query opens a
   * new one; without this handler such an error would crash the process. Logs to stderr by default.
   */
  onConnectionError?: (error: Error) => void;
}

export function openPostgres(connectionString: string, options: PostgresOptions = {}): Db {
  const onConnectionError =
    options.onConnectionError ??
    ((error: Error) =>
      console.error(`fedward: a PostgreSQL connection failed and was discarded: ${error.message}`));
  const pool = new pg.Pool({ connectionString, max: 10 });
  // pg re-emits an idle connection's error on the pool, and an 'error' event nobody listens to throws.
  pool.on("error", (error) => onConnectionError(error));
  const on = (client: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T extends Row>(sql: string, params: unknown[] = []) =>
      (await client.query<T>(sql, params.map(toPgParam))).rows,
    exec: async (sql) => {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await client.query(sql);
    },
  });
  return {
    kind: "postgres",
    ...on(pool),
    transaction: async (fn) => {
      const client = await pool.connect();
      // A checked-out connection has no pool listener: one that fails between two of fn's queries would
      // throw an uncaught 'error' event. Keep the error; the next query rejects and the client is dropped.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken ??= error;
        onConnectionError(error);
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await fn(on(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch((rollbackError: Error) => {
          broken ??= rollbackError;
        });
        throw error;
      } finally {
        client.removeListener("error", onError);
        // Releasing with an error closes the connection instead of pooling it.
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** pg sends a Buffer as bytea; a plain Uint8Array is wrapped without copying. */
function toPgParam(value: unknown): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}
