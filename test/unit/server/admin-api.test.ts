import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type AdminFederationsResponse,
  type AdminInviteResponse,
  type AdminRoundsResponse,
  type AdminSitesResponse,
  adminPaths,
} from "../../../src/core/admin-protocol";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import { l2Norm } from "../../../src/core/vector";
import { buildApp } from "../../../src/server/app";
import type { Db } from "../../../src/server/db";
import { Storage } from "../../../src/server/storage";
import {
  bearer,
  closeTestApp,
  enroll,
  federationWithSites,
  knownDelta,
  openTestApp,
  openTestDb,
  TEST_PARAMS,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe("coordinator app: admin API", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let adminToken: string;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    adminToken = (await storage.admin.ensureAdminToken()) as string;
  });
  afterAll(() => closeTestApp({ app, db }));

  const admin = <T>(url: string) => app.inject({ url, headers: bearer(adminToken) }).then((r) => r.json<T>());

  it("answers 401 without the admin token and 403 to a site's token, on every admin route", async () => {
    // Prepare
    const { federation, sites } = await federationWithSites(app, storage);
    const routes = [
      { method: "GET" as const, url: adminPaths.federations },
      { method: "GET" as const, url: adminPaths.sites(federation.id) },
      { method: "GET" as const, url: adminPaths.rounds(federation.id) },
      { method: "GET" as const, url: adminPaths.metrics(federation.id) },
      { method: "POST" as const, url: adminPaths.invites(federation.id), payload: { siteLabel: "X" } },
    ];

    for (const route of routes) {
      // Execute
      const none = await app.inject(route);
      const wrong = await app.inject({ ...route, headers: bearer(`${adminToken}x`) });
      const site = await app.inject({ ...route, headers: bearer((sites[0] as EnrollResponse).token) });
      const ok = await app.inject({ ...route, headers: bearer(adminToken) });

      // Assert
      expect(none.statusCode, route.url).toBe(401);
      expect(none.headers["www-authenticate"]).toBe("Bearer");
      expect(none.json().message).toMatch(/Authorization: Bearer <admin token>/);
      expect(wrong.statusCode, route.url).toBe(401);
      expect(wrong.json().message).toMatch(/not this coordinator's admin token/);
      expect(site.statusCode, route.url).toBe(403);
      expect(site.json().message).toMatch(/site's token/);
      expect(ok.statusCode, route.url).toBe(route.method === "POST" ? 201 : 200);
      expect(ok.headers["cache-control"]).toBe("no-store");
    }
    // Nothing was created by the refused invite requests: one invite per site, plus the accepted one.
    expect((await storage.listInvites(federation.id)).length).toBe(3);
  });

  it("answers 401 on a coordinator that has no admin token yet", async () => {
    const bare = await openTestDb();
    const bareApp = buildApp({
      config: { appDir: "/nonexistent", corsOrigins: "*" },
      storage: new Storage(bare),
    });

    const response = await bareApp.inject({ url: adminPaths.federations, headers: bearer(adminToken) });

    expect(response.statusCode).toBe(401);
    await closeTestApp({ app: bareApp, db: bare });
  });

  it("lists federations, sites, rounds with accepted and refused uploads after a real enrol and upload flow", async () => {
    // Prepare: 3 sites; round 1 by sites a and b (aggregated); in round 2, a uploads, c is refused twice.
    const plan = testPlan({ rounds: 3 });
    const { federation, sites } = await federationWithSites(app, storage, plan, 3);
    const [a, b, c] = sites as [EnrollResponse, EnrollResponse, EnrollResponse];
    const before = await admin<AdminSitesResponse>(adminPaths.sites(federation.id));
    await sleep(5);
    const deltas = [knownDelta(1), knownDelta(-2), knownDelta(0.5)] as const;
    expect((await upload(app, a, 1, updateBody(1, deltas[0]))).statusCode).toBe(202);
    expect((await upload(app, b, 1, updateBody(1, deltas[1]))).statusCode).toBe(202);
    expect((await upload(app, a, 2, updateBody(2, deltas[2]))).statusCode).toBe(202);
    const unclipped = new Float32Array(TEST_PARAMS).fill(100);
    expect((await upload(app, c, 2, updateBody(2, unclipped))).statusCode).toBe(400);
    expect((await upload(app, c, 2, updateBody(2, unclipped))).statusCode).toBe(400);
    // Not refusals of a round: a round past the plan's last, and a request without a valid token.
    expect((await upload(app, c, 99, updateBody(99, deltas[0]))).statusCode).toBe(409);
    expect((await upload(app, { ...c, token: "nope" }, 2, updateBody(2, deltas[0]))).statusCode).toBe(401);

    // Execute
    const list = await admin<AdminFederationsResponse>(adminPaths.federations);
    const after = await admin<AdminSitesResponse>(adminPaths.sites(federation.id));
    const rounds = await admin<AdminRoundsResponse>(adminPaths.rounds(federation.id));

    // Assert: the federation as the list shows it.
    expect(list.federations.find((f) => f.id === federation.id)).toEqual({
      id: federation.id,
      title: "Test federation",
      planHash: federation.planHash,
      status: "training",
      currentRound: 2,
      rounds: 3,
      minSites: 2,
      sitesEnrolled: 3,
      invitesOpen: 0,
      createdAt: federation.createdAt.toISOString(),
    });
    // Sites in enrolment order; uploading moved a's and c's last-seen time, not b's enrolment time.
    expect(after.sites.map((s) => [s.id, s.label, s.updatesAccepted])).toEqual([
      [a.siteId, "Site 1", 2],
      [b.siteId, "Site 2", 1],
      [c.siteId, "Site 3", 0],
    ]);
    expect(after.sites.map((s) => s.enrolledAt)).toEqual(before.sites.map((s) => s.enrolledAt));
    for (const i of [0, 2]) {
      expect(Date.parse(after.sites[i]?.lastSeenAt as string)).toBeGreaterThan(
        Date.parse(before.sites[i]?.lastSeenAt as string),
      );
    }
    expect(after.invites.map((i) => [i.siteLabel, i.siteId])).toEqual([
      ["Site 1", a.siteId],
      ["Site 2", b.siteId],
      ["Site 3", c.siteId],
    ]);
    expect(JSON.stringify(after)).not.toMatch(/"code"/);
    // Round 1: aggregated when model version 1 was made, the norms as received.
    const models = await db.query<{ version: number; created_at: Date }>(
      "SELECT version, created_at FROM models WHERE federation_id = $1 ORDER BY version",
      [federation.id],
    );
    const [r1, r2] = rounds.rounds;
    expect(rounds.minSites).toBe(2);
    expect(rounds.rounds).toHaveLength(2);
    expect(r1).toMatchObject({
      round: 1,
      status: "aggregated",
      openedAt: models[0]?.created_at.toISOString(),
      aggregatedAt: models[1]?.created_at.toISOString(),
      refused: [],
    });
    expect(r1?.accepted.map((u) => [u.siteLabel, u.l2Norm])).toEqual([
      ["Site 1", l2Norm(deltas[0])],
      ["Site 2", l2Norm(deltas[1])],
    ]);
    expect(r1?.meanUpdateNorm).toBeCloseTo((l2Norm(deltas[0]) + l2Norm(deltas[1])) / 2, 12);
    // Round 2: open, a accepted, c refused twice with the reason the site was given.
    expect(r2).toMatchObject({ round: 2, status: "open", aggregatedAt: null });
    expect(r2?.openedAt).toBe(models[1]?.created_at.toISOString());
    expect(r2?.accepted.map((u) => [u.siteId, u.l2Norm])).toEqual([[a.siteId, l2Norm(deltas[2])]]);
    expect(r2?.meanUpdateNorm).toBe(l2Norm(deltas[2]));
    expect(r2?.refused).toEqual([
      {
        siteId: c.siteId,
        siteLabel: "Site 3",
        refusedAt: expect.any(String),
        statusCode: 400,
        reason: expect.stringMatching(/L2 norm is .* it was not clipped/),
        attempts: 2,
      },
    ]);
    for (const u of r1?.accepted ?? [])
      expect(Date.parse(u.receivedAt)).toBeLessThanOrEqual(Date.parse(r1?.aggregatedAt as string));
  });

  it("records a body over the size limit as a refusal (413, before the route's validation)", async () => {
    const { federation, sites } = await federationWithSites(app, storage);
    const site = sites[0] as EnrollResponse;

    const response = await upload(
      app,
      site,
      1,
      Buffer.concat([updateBody(1, knownDelta(1)), Buffer.alloc(8)]),
    );
    const rounds = await admin<AdminRoundsResponse>(adminPaths.rounds(federation.id));

    expect(response.statusCode).toBe(413);
    expect(rounds.rounds[0]?.refused.map((r) => [r.siteId, r.statusCode])).toEqual([[site.siteId, 413]]);
  });

  it("creates a single-use invite that enrols a new site, and shows it used", async () => {
    // Prepare
    const { federation } = await federationWithSites(app, storage);

    // Execute
    const created = await app.inject({
      method: "POST",
      url: adminPaths.invites(federation.id),
      headers: bearer(adminToken),
      payload: { siteLabel: "  St. Olav's radiology  " },
    });
    const invite = created.json<AdminInviteResponse>();
    const openBefore = (await admin<AdminFederationsResponse>(adminPaths.federations)).federations.find(
      (f) => f.id === federation.id,
    )?.invitesOpen;
    const site = await enroll(app, invite.code);
    const again = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: invite.code },
    });
    const listed = await admin<AdminSitesResponse>(adminPaths.sites(federation.id));

    // Assert
    expect(created.statusCode).toBe(201);
    expect(invite.code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    expect(invite).toEqual({
      federationId: federation.id,
      siteLabel: "St. Olav's radiology",
      code: invite.code,
      // No PUBLIC_URL: the origin the admin reached the coordinator at (inject's default Host).
      url: `http://localhost:80/?invite=${invite.code}`,
    });
    expect(openBefore).toBe(1);
    expect(site).toMatchObject({ federationId: federation.id, siteLabel: "St. Olav's radiology" });
    expect(again.statusCode).toBe(409);
    expect(listed.sites.map((s) => s.label)).toContain("St. Olav's radiology");
    expect(listed.invites.at(-1)).toEqual({
      siteLabel: "St. Olav's radiology",
      createdAt: expect.any(String),
      siteId: site.siteId,
    });
  });

  it("builds invite links on PUBLIC_URL when it is set", async () => {
    const withUrl = buildApp({
      config: { appDir: "/nonexistent", corsOrigins: "*", publicUrl: "https://fedward.example.org" },
      storage,
    });
    const { federation } = await federationWithSites(app, storage);

    const response = await withUrl.inject({
      method: "POST",
      url: adminPaths.invites(federation.id),
      headers: bearer(adminToken),
      payload: { siteLabel: "Site 9" },
    });

    const invite = response.json<AdminInviteResponse>();
    expect(invite.url).toBe(`https://fedward.example.org/?invite=${invite.code}`);
    await withUrl.close();
  });

  it("refuses bad invite requests with a reason", async () => {
    const { federation, sites } = await federationWithSites(app, storage, testPlan({ rounds: 1 }));
    const post = (url: string, payload: unknown) =>
      app.inject({ method: "POST", url, headers: bearer(adminToken), payload: payload as object });

    const empty = await post(adminPaths.invites(federation.id), { siteLabel: "" });
    const blank = await post(adminPaths.invites(federation.id), { siteLabel: "   " });
    const long = await post(adminPaths.invites(federation.id), { siteLabel: "x".repeat(101) });
    const missing = await post(adminPaths.invites("no-such-federation"), { siteLabel: "A" });
    for (const [i, site] of sites.entries()) {
      expect((await upload(app, site, 1, updateBody(1, knownDelta(i + 1)))).statusCode).toBe(202);
    }
    const done = await post(adminPaths.invites(federation.id), { siteLabel: "Late site" });

    for (const response of [empty, blank, long]) expect(response.statusCode).toBe(400);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toMatch(/no federation "no-such-federation"/);
    expect(done.statusCode).toBe(409);
    expect(done.json().message).toMatch(/finished all 1 rounds/);
    for (const url of [adminPaths.sites("no-such-federation"), adminPaths.rounds("no-such-federation")]) {
      expect((await app.inject({ url, headers: bearer(adminToken) })).statusCode).toBe(404);
    }
  });

  it("answers 5xx with a fixed sentence, never the internal error", async () => {
    const spy = vi
      .spyOn(storage.admin, "listFederations")
      .mockRejectedValueOnce(new Error('relation "secret_internal_table" does not exist'));

    const response = await app.inject({ url: adminPaths.federations, headers: bearer(adminToken) });

    spy.mockRestore();
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain("secret_internal_table");
    expect(response.json().message).toMatch(/could not handle this request/);
  });
});
