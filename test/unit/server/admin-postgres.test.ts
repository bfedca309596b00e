import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AdminRoundsResponse,
  type AdminSitesResponse,
  adminPaths,
} from "../../../src/core/admin-protocol";
import type { EnrollResponse } from "../../../src/core/protocol";
import { l2Norm } from "../../../src/core/vector";
import { type Db, openPostgres } from "../../../src/server/db";
import { runMigrations } from "../../../src/server/migrations";
import { Storage } from "../../../src/server/storage";
import { startTestPostgres, type TestPostgres } from "../../support/postgres";
import { bearer, federationWithSites, knownDelta, testApp, updateBody, upload } from "./helpers";

/** The admin token and admin queries on a real PostgreSQL server (DATABASE_URL), not PGlite. */
describe("admin on PostgreSQL", () => {
  let cluster: TestPostgres;
  const dbs: Db[] = [];

  beforeAll(async () => {
    cluster = await startTestPostgres();
  }, 120_000);
  afterAll(async () => {
    for (const db of dbs) await db.close();
    await cluster?.stop();
  }, 60_000);

  it("makes exactly one admin token when several coordinators start at once on one database", async () => {
    // Prepare: four coordinators' pools on one migrated database.
    const url = await cluster.createDatabase("fedward_admin_race");
    const pools = Array.from({ length: 4 }, () => openPostgres(url));
    dbs.push(...pools);
    await runMigrations(pools[0] as Db);
    const stores = pools.map((db) => new Storage(db));

    // Execute
    const made = await Promise.all(stores.map((s) => s.admin.ensureAdminToken()));

    // Assert: one token made; every coordinator accepts it.
    const tokens = made.filter((t): t is string => t !== undefined);
    expect(tokens).toHaveLength(1);
    for (const store of stores) expect(await store.admin.isAdminToken(tokens[0] as string)).toBe(true);
  });

  it("lists sites and rounds after an enrol and upload flow", async () => {
    // Prepare
    const db = openPostgres(await cluster.createDatabase("fedward_admin_api"));
    dbs.push(db);
    await runMigrations(db);
    const storage = new Storage(db);
    const app = testApp(storage);
    const token = (await storage.admin.ensureAdminToken()) as string;
    const { federation, sites } = await federationWithSites(app, storage);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    await upload(app, b, 1, updateBody(1, knownDelta(2)));
    await upload(app, b, 2, updateBody(2, new Float32Array(knownDelta(1).length).fill(100)));

    // Execute
    const listed = await app.inject({ url: adminPaths.sites(federation.id), headers: bearer(token) });
    const rounds = await app.inject({ url: adminPaths.rounds(federation.id), headers: bearer(token) });
    await app.close();

    // Assert
    expect(listed.json<AdminSitesResponse>().sites.map((s) => [s.label, s.updatesAccepted])).toEqual([
      ["Site 1", 1],
      ["Site 2", 1],
    ]);
    const [r1, r2] = rounds.json<AdminRoundsResponse>().rounds;
    expect(r1?.status).toBe("aggregated");
    expect(r1?.accepted.map((u) => u.l2Norm)).toEqual([l2Norm(knownDelta(1)), l2Norm(knownDelta(2))]);
    expect(r2?.status).toBe("open");
    expect(r2?.refused.map((r) => [r.siteId, r.statusCode, r.attempts])).toEqual([[b.siteId, 400, 1]]);
  });
});
