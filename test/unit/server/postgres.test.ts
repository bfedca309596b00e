import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiPaths, type EnrollResponse, type UploadResponse } from "../../../src/core/protocol";
import { decodeVector, WireKind } from "../../../src/core/wire";
import { type Db, openPostgres } from "../../../src/server/db";
import { migrations, runMigrations } from "../../../src/server/migrations";
import { Storage } from "../../../src/server/storage";
import { bytesToVector } from "../../../src/server/vector-bytes";
import { startTestPostgres, type TestPostgres } from "../../support/postgres";
import {
  bearer,
  enroll,
  expectMigrationsApplyOnce,
  federationWithSites,
  fetchFinalModel,
  knownDelta,
  TEST_PARAMS,
  testApp,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

/**
 * The coordinator on a real PostgreSQL server (what DATABASE_URL selects), not PGlite: a pg Pool runs
 * transactions on several connections at once, so concurrent uploads really race here. The cluster is a
 * throwaway one (test/support/postgres.ts); without PostgreSQL installed these tests fail, not skip.
 */
describe("coordinator on PostgreSQL", () => {
  let cluster: TestPostgres;
  const dbs: Db[] = [];
  const apps: FastifyInstance[] = [];
  let databases = 0;

  beforeAll(async () => {
    cluster = await startTestPostgres();
  }, 120_000);
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const db of dbs) await db.close();
    await cluster?.stop();
  }, 60_000);

  /** A Db on a fresh, empty database of the cluster. */
  async function freshDb(): Promise<Db> {
    const url = await cluster.createDatabase(`fedward_${++databases}`);
    const db = openPostgres(url);
    dbs.push(db);
    return db;
  }

  /** Several pools (one per coordinator) on one database per attempt. */
  const sharedUrls = new Map<number, Promise<string>>();
  async function freshDbOn(attempt: number): Promise<Db> {
    if (!sharedUrls.has(attempt)) sharedUrls.set(attempt, cluster.createDatabase(`fedward_race_${attempt}`));
    const db = openPostgres(await (sharedUrls.get(attempt) as Promise<string>));
    dbs.push(db);
    return db;
  }

  /** A migrated database with its Storage and the app on top, as server.ts builds them for DATABASE_URL. */
  async function coordinator() {
    const db = await freshDb();
    await runMigrations(db);
    const storage = new Storage(db);
    const app = testApp(storage);
    apps.push(app);
    return { db, storage, app };
  }

  async function model(app: FastifyInstance, site: EnrollResponse, version: number): Promise<Float32Array> {
    const response = await app.inject({
      url: apiPaths.model(site.federationId, version),
      headers: bearer(site.token),
    });
    expect(response.statusCode).toBe(200);
    return decodeVector(response.rawPayload, { kind: WireKind.model, count: TEST_PARAMS }).values;
  }

  /** FedAvg in float64 from the float32 deltas, rounded once to float32. */
  function globalPlusMean(global: Float32Array, deltas: Float32Array[]): Float32Array {
    return Float32Array.from(
      global,
      (g, i) => g + deltas.reduce((sum, d) => sum + (d[i] as number), 0) / deltas.length,
    );
  }

  it("applies every migration once, and nothing on a second run", async () => {
    const db = await freshDb();

    await expectMigrationsApplyOnce(db);
  });

  it("lets coordinators that start at once on an empty database apply each migration exactly once", async () => {
    // The race on CREATE TABLE IF NOT EXISTS is timing-dependent, so try several empty databases.
    for (let attempt = 0; attempt < 5; attempt++) {
      const coordinators = await Promise.all(Array.from({ length: 4 }, () => freshDbOn(attempt)));

      const applied = await Promise.all(coordinators.map((db) => runMigrations(db)));

      expect(applied.flat().sort((a, b) => a - b)).toEqual(migrations.map((m) => m.version));
      const recorded = await coordinators[0]?.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM schema_migrations",
      );
      expect(recorded?.[0]?.n).toBe(migrations.length);
    }
  });

  it("enrols, aggregates global + mean(deltas) exactly, refuses a second upload, and serves the final model", async () => {
    // Prepare
    const { storage, app } = await coordinator();
    const plan = testPlan();
    const { federation, invites, sites } = await federationWithSites(app, storage, plan);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    expect(await storage.listInvites(federation.id)).toEqual(
      invites.map((invite, i) => ({ ...invite, siteId: sites[i]?.siteId })),
    );
    expect((await storage.listInvites()).map((i) => i.code)).toEqual(invites.map((i) => i.code));
    const reused = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: invites[0]?.code },
    });
    expect(reused.statusCode).toBe(409);

    // Round 1, one upload after the other, with a second upload from the same site refused.
    const [deltaA1, deltaB1] = [knownDelta(1), knownDelta(-3)];
    const global0 = await model(app, a, 0);
    expect(global0).toEqual(await storage.getModel(federation.id, 0));
    const first = await upload(app, a, 1, updateBody(1, deltaA1, 120));
    const again = await upload(app, a, 1, updateBody(1, knownDelta(7), 120));
    expect(await storage.getState(federation.id, a.siteId)).toMatchObject({
      round: 1,
      sitesEnrolled: 2,
      updatesThisRound: 1,
      uploadedThisRound: true,
    });
    const second = await upload(app, b, 1, updateBody(1, deltaB1, 80));

    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ round: 1, updatesThisRound: 1, minSites: 2, aggregated: false });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/already uploaded its update for round 1/);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toMatchObject({ round: 1, updatesThisRound: 2, minSites: 2, aggregated: true });
    const global1 = await model(app, b, 1);
    expect(global1).toEqual(globalPlusMean(global0, [deltaA1, deltaB1]));
    expect(global1).not.toEqual(global0);

    // Round 2, both sites at once: the pool runs the two transactions on two connections.
    const [deltaA2, deltaB2] = [knownDelta(2.5), knownDelta(0.25)];
    const concurrent = await Promise.all([
      upload(app, a, 2, updateBody(2, deltaA2, 120)),
      upload(app, b, 2, updateBody(2, deltaB2, 80)),
    ]);

    expect(concurrent.map((r) => r.statusCode)).toEqual([202, 202]);
    const replies = concurrent.map((r) => r.json<UploadResponse>());
    expect(replies.filter((r) => r.aggregated)).toHaveLength(1);
    expect(replies.map((r) => r.updatesThisRound).sort()).toEqual([1, 2]);
    const global2 = await model(app, a, 2);
    expect(global2).toEqual(globalPlusMean(global1, [deltaA2, deltaB2]));

    // Done: no more uploads, the final model is served.
    expect(await storage.getFederation(federation.id)).toMatchObject({ status: "done", currentRound: 3 });
    expect(await storage.getState(federation.id, b.siteId)).toMatchObject({
      status: "done",
      round: 3,
      modelVersion: 2,
      updatesThisRound: 0,
    });
    const late = await upload(app, a, 3, updateBody(3, knownDelta(1)));
    expect(late.statusCode).toBe(409);
    const { weights } = await fetchFinalModel(app, plan, federation.id, a, b);
    expect(bytesToVector(weights.rawPayload)).toEqual(global2);
    expect(await storage.getModelVersions(federation.id)).toEqual([0, 1, 2]);
  });

  it("under concurrent uploads aggregates exactly once per round, refuses late ones with 409 and never fails with 500", async () => {
    // Prepare: 9 sites enrolling at once (one invite used twice at once), 6 needed per round, 3 rounds.
    const { storage, app } = await coordinator();
    const plan = testPlan({ minSites: 6, rounds: 3 });
    const labels = Array.from({ length: 9 }, (_, i) => `Site ${i + 1}`);
    const { federation, invites } = await storage.createFederation(plan, labels);
    const [enrolled, raced] = await Promise.all([
      Promise.all(invites.slice(0, 8).map((invite) => enroll(app, invite.code))),
      Promise.all(
        [0, 1].map(() =>
          app.inject({ method: "POST", url: apiPaths.enroll, payload: { inviteCode: invites[8]?.code } }),
        ),
      ),
    ]);
    expect(raced.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const winner = raced.find((r) => r.statusCode === 200)?.json<EnrollResponse>() as EnrollResponse;
    const sites = [...enrolled, winner];
    expect(new Set(sites.map((site) => site.siteId)).size).toBe(9);

    let global = await model(app, sites[0] as EnrollResponse, 0);
    for (let round = 1; round <= plan.rounds; round++) {
      const deltas = sites.map((_, i) => knownDelta(round * 10 + i));

      // Execute: every site uploads at the same time.
      const responses = await Promise.all(
        sites.map((site, i) => upload(app, site, round, updateBody(round, deltas[i] as Float32Array))),
      );

      // Assert
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 202)).toHaveLength(plan.minSites);
      expect(statuses.filter((s) => s === 409)).toHaveLength(sites.length - plan.minSites);
      const accepted = responses.flatMap((r, i) => (r.statusCode === 202 ? [i] : []));
      const replies = accepted.map((i) =>
        (responses[i] as (typeof responses)[number]).json<UploadResponse>(),
      );
      expect(replies.filter((r) => r.aggregated)).toHaveLength(1);
      expect(replies.map((r) => r.updatesThisRound).sort()).toEqual([1, 2, 3, 4, 5, 6]);
      // The last round's latecomers find the federation done rather than the next round open.
      const late = round === plan.rounds ? /finished all 3 rounds/ : new RegExp(`Round ${round} is not open`);
      for (const refused of responses.filter((r) => r.statusCode === 409)) {
        expect(refused.json().message).toMatch(late);
      }
      const next = await model(app, sites[0] as EnrollResponse, round);
      expect(next).toEqual(
        globalPlusMean(
          global,
          accepted.map((i) => deltas[i] as Float32Array),
        ),
      );
      global = next;
    }

    expect(await storage.getModelVersions(federation.id)).toEqual([0, 1, 2, 3]);
    expect(await storage.getFederation(federation.id)).toMatchObject({ status: "done", currentRound: 4 });
    const weights = await app.inject({
      url: apiPaths.finalWeights(federation.id),
      headers: bearer(winner.token),
    });
    expect(weights.statusCode).toBe(200);
    expect(bytesToVector(weights.rawPayload)).toEqual(global);
  });

  it("keeps federations apart when several finish rounds at the same time", async () => {
    const { storage, app } = await coordinator();
    const federations = await Promise.all(
      [1, 2, 3].map(() => federationWithSites(app, storage, testPlan({ rounds: 1 }))),
    );

    const responses = await Promise.all(
      federations.flatMap(({ sites }) =>
        sites.map((site, i) => upload(app, site, 1, updateBody(1, knownDelta(i + 1)))),
      ),
    );

    expect(responses.map((r) => r.statusCode)).toEqual(responses.map(() => 202));
    expect(responses.filter((r) => r.json<UploadResponse>().aggregated)).toHaveLength(federations.length);
    for (const { federation } of federations) {
      expect(await storage.getFederation(federation.id)).toMatchObject({ status: "done", currentRound: 2 });
      expect(await storage.getModelVersions(federation.id)).toEqual([0, 1]);
    }
  });
});
