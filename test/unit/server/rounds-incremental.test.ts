import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EnrollResponse } from "../../../src/core/protocol";
import type { FitFailure, FitResult, Strategy } from "../../../src/core/strategy";
import type { Db, Queryable, Row } from "../../../src/server/db";
import { Storage } from "../../../src/server/storage";
import { vectorToBytes } from "../../../src/server/vector-bytes";
import {
  closeTestApp,
  federationWithSites,
  knownDelta,
  openTestDb,
  testApp,
  testPlan,
  updateBody,
  upload,
} from "./helpers";
import { deadlinePlan, fakeClock, globalPlusMean, MINUTE, modelOf } from "./rounds-helpers";

/** Bytes of bytea columns each query returned, per query, while `recording` is on. */
function countingDb(db: Db) {
  const reads: { sql: string; bytes: number }[] = [];
  const state = { recording: false };
  const count = <T extends Row>(sql: string, rows: T[]) => {
    if (!state.recording) return rows;
    let bytes = 0;
    for (const row of rows)
      for (const value of Object.values(row)) if (value instanceof Uint8Array) bytes += value.byteLength;
    reads.push({ sql, bytes });
    return rows;
  };
  const wrap = (q: Queryable): Queryable => ({
    query: async <T extends Row>(sql: string, params?: unknown[]) =>
      count(sql, await q.query<T>(sql, params)),
    exec: (sql) => q.exec(sql),
  });
  const counted: Db = {
    ...wrap(db),
    kind: db.kind,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
  return { db: counted, reads, state };
}

describe("incremental aggregation", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await openTestDb();
    storage = new Storage(db);
    app = testApp(storage);
  });
  afterAll(() => closeTestApp({ app, db }));

  it("adds each update into a float64 running sum, keeps no vectors, and aggregates exactly", async () => {
    // Prepare: 12 sites, all needed.
    const sites = 12;
    const { federation, sites: enrolled } = await federationWithSites(
      app,
      storage,
      testPlan({ minSites: sites, rounds: 1 }),
      sites,
    );
    const deltas = enrolled.map((_, i) => knownDelta(i - 5.5));
    const global = await modelOf(app, enrolled[0] as EnrollResponse, 0);

    // Execute
    for (const [i, site] of enrolled.entries()) {
      expect((await upload(app, site, 1, updateBody(1, deltas[i] as Float32Array))).statusCode).toBe(202);
    }

    // Assert
    expect(await modelOf(app, enrolled[0] as EnrollResponse, 1)).toEqual(globalPlusMean(global, deltas));
    const stored = await db.query<{ vectors: number; rows: number }>(
      "SELECT count(delta)::int AS vectors, count(*)::int AS rows FROM updates WHERE federation_id = $1",
      [federation.id],
    );
    expect(stored[0]).toEqual({ vectors: 0, rows: sites });
    const [round] = await db.query<{ sum: Uint8Array | null; updates: number; close_reason: string }>(
      "SELECT sum, updates, close_reason FROM rounds WHERE federation_id = $1 AND round = 1",
      [federation.id],
    );
    expect(round).toEqual({ sum: null, updates: sites, close_reason: "all-reported" });
  });

  it("reads the same number of bytes for every upload of a round, however many came before", async () => {
    // Prepare: a coordinator whose database counts what each query returns.
    const counting = countingDb(await openTestDb());
    const countedStorage = new Storage(counting.db);
    const countedApp = testApp(countedStorage);
    const sites = 10;
    const { sites: enrolled } = await federationWithSites(
      countedApp,
      countedStorage,
      testPlan({ minSites: sites, rounds: 1 }),
      sites,
    );
    const perUpload: number[] = [];

    // Execute: every upload but the one that closes the round.
    for (const [i, site] of enrolled.slice(0, -1).entries()) {
      counting.reads.length = 0;
      counting.state.recording = true;
      expect((await upload(countedApp, site, 1, updateBody(1, knownDelta(i + 1)))).statusCode).toBe(202);
      counting.state.recording = false;
      perUpload.push(counting.reads.reduce((n, r) => n + r.bytes, 0));
      expect(counting.reads.filter((r) => /FROM updates/.test(r.sql) && r.bytes > 0)).toEqual([]);
    }

    // Assert: the first reads no sum (there is none yet), every later one reads exactly one.
    expect(perUpload[0]).toBe(0);
    expect(new Set(perUpload.slice(1))).toEqual(new Set([knownDelta(1).length * 8]));
    await closeTestApp({ app: countedApp, db: counting.db });
  });

  it("an open round from before the running sums is summed once from the vectors already stored", async () => {
    // Prepare: two updates stored as the coordinator did before migration 4, and no round row.
    const { federation, sites } = await federationWithSites(
      app,
      storage,
      testPlan({ minSites: 3, rounds: 1 }),
      3,
    );
    const [a, b, c] = sites as [EnrollResponse, EnrollResponse, EnrollResponse];
    const deltas = [knownDelta(2), knownDelta(-1), knownDelta(0.75)];
    const global = await modelOf(app, a, 0);
    await db.query("DELETE FROM rounds WHERE federation_id = $1", [federation.id]);
    for (const [i, site] of [a, b].entries()) {
      await db.query(
        "INSERT INTO updates (federation_id, round, site_id, delta, num_examples) VALUES ($1, 1, $2, $3, 5)",
        [federation.id, site.siteId, vectorToBytes(deltas[i] as Float32Array)],
      );
    }

    // Execute
    const last = await upload(app, c, 1, updateBody(1, deltas[2] as Float32Array));

    // Assert
    expect(last.json()).toMatchObject({ updatesThisRound: 3, aggregated: true });
    expect(await modelOf(app, a, 1)).toEqual(globalPlusMean(global, deltas));
  });
});

describe("a strategy that needs every update", () => {
  const clock = fakeClock();

  it("gets each update's vector at the close, in site order, and the active sites that sent none as failures", async () => {
    // Prepare: a strategy that records what it is given and returns the global model plus the first delta.
    const calls: { round: number; results: FitResult[]; failures: FitFailure[] }[] = [];
    const recording: Strategy = {
      name: "recording",
      aggregateFit: (round, global, results, failures) => {
        calls.push({ round, results, failures });
        return {
          parameters: Float32Array.from(global, (g, i) => g + (results[0]?.delta[i] as number)),
          metrics: {},
        };
      },
    };
    const db = await openTestDb();
    const storage = new Storage(db, recording, { now: () => clock.now });
    const app = testApp(storage);
    const { sites } = await federationWithSites(app, storage, deadlinePlan({ rounds: 1 }), 3);
    const [a, b, c] = sites as [EnrollResponse, EnrollResponse, EnrollResponse];
    await upload(app, b, 1, updateBody(1, knownDelta(4), 7));
    await upload(app, a, 1, updateBody(1, knownDelta(-3), 9));

    // Execute
    clock.advance(10 * MINUTE);
    await storage.settleDueRounds();

    // Assert
    const bySite = new Map([
      [a.siteId, { delta: knownDelta(-3), numExamples: 9 }],
      [b.siteId, { delta: knownDelta(4), numExamples: 7 }],
    ]);
    const expected = [...bySite.keys()].sort().map((siteId) => ({ siteId, ...bySite.get(siteId) }));
    expect(calls).toEqual([
      {
        round: 1,
        results: expected,
        failures: [{ siteId: c.siteId, reason: "sent no update before the round closed" }],
      },
    ]);
    await closeTestApp({ app, db });
  });
});
