import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AdminRoundActionResponse,
  type AdminRoundsResponse,
  type AdminSitesResponse,
  adminPaths,
} from "../../../src/core/admin-protocol";
import type { EnrollResponse } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import {
  bearer,
  closeTestApp,
  federationWithSites,
  knownDelta,
  testPlan,
  updateBody,
  upload,
} from "./helpers";
import {
  clockedApp,
  deadlinePlan,
  fakeClock,
  globalPlusMean,
  MINUTE,
  modelOf,
  siteState,
} from "./rounds-helpers";

describe("admin actions on rounds", () => {
  const clock = fakeClock();
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let adminToken: string;
  beforeAll(async () => {
    ({ db, storage, app } = await clockedApp(clock));
    adminToken = (await storage.admin.ensureAdminToken()) as string;
  });
  afterAll(() => closeTestApp({ app, db }));

  const post = (url: string, payload?: object, token = adminToken) =>
    app.inject({ method: "POST", url, headers: bearer(token), ...(payload ? { payload } : {}) });
  const rounds = async (federationId: string) =>
    (
      await app.inject({ url: adminPaths.rounds(federationId), headers: bearer(adminToken) })
    ).json<AdminRoundsResponse>();

  async function threeSites(plan = deadlinePlan()) {
    const { federation, sites } = await federationWithSites(app, storage, plan, 3);
    return { federation, sites: sites as [EnrollResponse, EnrollResponse, EnrollResponse] };
  }

  it("answers 401 without the admin token and 403 to a site's token on every action", async () => {
    const { federation, sites } = await threeSites();
    const actions = [
      [adminPaths.closeRound(federation.id, 1), undefined],
      [adminPaths.roundDeadline(federation.id, 1), { deadline: new Date(clock.now + MINUTE).toISOString() }],
      [adminPaths.minSites(federation.id), { minSites: 1 }],
      [adminPaths.revokeSite(federation.id, sites[2].siteId), undefined],
    ] as const;

    for (const [url, payload] of actions) {
      const none = await app.inject({ method: "POST", url, ...(payload ? { payload } : {}) });
      const site = await post(url, payload, sites[0].token);
      expect(none.statusCode, url).toBe(401);
      expect(site.statusCode, url).toBe(403);
    }
    expect(await siteState(app, sites[0])).toMatchObject({ round: 1, minSites: 2, sitesActive: 3 });
  });

  it("shows the open round's deadline and which sites it waits for", async () => {
    const { federation, sites } = await threeSites();
    await upload(app, sites[1], 1, updateBody(1, knownDelta(1)));

    const listed = await rounds(federation.id);

    expect(listed).toMatchObject({
      minSites: 2,
      sitesActive: 3,
      serverTime: new Date(clock.now).toISOString(),
    });
    expect(listed.rounds[0]).toMatchObject({
      round: 1,
      status: "open",
      deadline: new Date(clock.now + 10 * MINUTE).toISOString(),
      deadlineExtensions: 0,
      closeReason: null,
      waitingFor: [
        { siteId: sites[0].siteId, siteLabel: "Site 1" },
        { siteId: sites[2].siteId, siteLabel: "Site 3" },
      ],
    });
  });

  it("closes a round early once it has its quorum, and not before", async () => {
    // Prepare
    const { federation, sites } = await threeSites();
    const [a, b] = sites;
    const global = await modelOf(app, a, 0);
    await upload(app, a, 1, updateBody(1, knownDelta(1)));

    // Execute
    const short = await post(adminPaths.closeRound(federation.id, 1));
    await upload(app, b, 1, updateBody(1, knownDelta(-1)));
    const closed = await post(adminPaths.closeRound(federation.id, 1));
    const again = await post(adminPaths.closeRound(federation.id, 1));

    // Assert
    expect(short.statusCode).toBe(409);
    expect(short.json().message).toMatch(/Round 1 has 1 of the 2 updates it needs, so it cannot close/);
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.json<AdminRoundActionResponse>()).toEqual({
      status: "training",
      currentRound: 2,
      minSites: 2,
      deadline: new Date(clock.now + 10 * MINUTE).toISOString(),
      closed: { round: 1, modelVersion: 1, reason: "admin" },
    });
    expect(await modelOf(app, a, 1)).toEqual(globalPlusMean(global, [knownDelta(1), knownDelta(-1)]));
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/Round 1 is not open; round 2 is/);
    expect((await rounds(federation.id)).rounds[0]).toMatchObject({ closeReason: "admin", waitingFor: [] });
  });

  it("moves the open round's deadline, refusing one in the past or for another round", async () => {
    // Prepare
    const { federation, sites } = await threeSites();
    const later = new Date(clock.now + 60 * MINUTE).toISOString();

    // Execute
    const moved = await post(adminPaths.roundDeadline(federation.id, 1), { deadline: later });
    const past = await post(adminPaths.roundDeadline(federation.id, 1), {
      deadline: new Date(clock.now - 1).toISOString(),
    });
    const other = await post(adminPaths.roundDeadline(federation.id, 2), { deadline: later });
    const garbled = await post(adminPaths.roundDeadline(federation.id, 1), { deadline: "tomorrow" });

    // Assert: the new deadline holds where the plan's would have closed the round.
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ deadline: later, closed: null });
    expect(past.statusCode).toBe(400);
    expect(past.json().message).toMatch(/is not in the future/);
    expect(other.statusCode).toBe(409);
    expect(garbled.statusCode).toBe(400);
    await upload(app, sites[0], 1, updateBody(1, knownDelta(1)));
    await upload(app, sites[1], 1, updateBody(1, knownDelta(2)));
    clock.advance(30 * MINUTE);
    expect(await siteState(app, sites[0])).toMatchObject({ round: 1, deadline: later, waitingFor: "sites" });
    clock.advance(30 * MINUTE);
    expect(await siteState(app, sites[0])).toMatchObject({ round: 2 });
  });

  it("changes the quorum: lowering it closes a round that reached its deadline short of the old one", async () => {
    // Prepare: one update in, the deadline passed (extended), minSites 2.
    const { federation, sites } = await threeSites();
    await upload(app, sites[0], 1, updateBody(1, knownDelta(1)));
    clock.advance(11 * MINUTE);
    expect(await siteState(app, sites[0])).toMatchObject({ round: 1, deadlineExtensions: 1 });
    clock.advance(5 * MINUTE);

    // Execute
    const lowered = await post(adminPaths.minSites(federation.id), { minSites: 1 });
    const invalid = await post(adminPaths.minSites(federation.id), { minSites: 0 });

    // Assert
    expect(lowered.statusCode, lowered.body).toBe(200);
    expect(lowered.json()).toMatchObject({
      minSites: 1,
      currentRound: 2,
      closed: { round: 1, reason: "deadline" },
    });
    expect(invalid.statusCode).toBe(400);
    expect(await siteState(app, sites[1])).toMatchObject({ round: 2, minSites: 1 });
    expect((await rounds(federation.id)).minSites).toBe(1);
  });

  it("on a plan without a deadline, raising the quorum makes the round wait for more sites", async () => {
    const { federation, sites } = await threeSites(testPlan({ rounds: 2, minSites: 2 }));

    await post(adminPaths.minSites(federation.id), { minSites: 3 });
    await upload(app, sites[0], 1, updateBody(1, knownDelta(1)));
    const two = await upload(app, sites[1], 1, updateBody(1, knownDelta(2)));
    const three = await upload(app, sites[2], 1, updateBody(1, knownDelta(3)));

    expect(two.json()).toMatchObject({ updatesThisRound: 2, minSites: 3, aggregated: false });
    expect(three.json()).toMatchObject({ updatesThisRound: 3, aggregated: true });
  });

  it("revokes a site: its token stops working at once and the round no longer waits for it", async () => {
    // Prepare
    const { federation, sites } = await threeSites();
    const [a, b, c] = sites;
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    await upload(app, b, 1, updateBody(1, knownDelta(2)));

    // Execute
    const revoked = await post(adminPaths.revokeSite(federation.id, c.siteId));
    const twice = await post(adminPaths.revokeSite(federation.id, c.siteId));
    const byC = await app.inject({
      url: `/api/federations/${federation.id}/state`,
      headers: bearer(c.token),
    });

    // Assert: a and b were every active site, so the round closed.
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.json()).toMatchObject({ currentRound: 2, closed: { round: 1, reason: "all-reported" } });
    expect(twice.statusCode).toBe(404);
    expect(byC.statusCode).toBe(401);
    expect(byC.json().message).toMatch(/admin revoked this site on .*; its token no longer works/);
    expect(await siteState(app, a)).toMatchObject({ sitesEnrolled: 3, sitesActive: 2 });
    const listed = (
      await app.inject({ url: adminPaths.sites(federation.id), headers: bearer(adminToken) })
    ).json<AdminSitesResponse>();
    expect(listed.sites.map((s) => s.revokedAt !== null)).toEqual([false, false, true]);
  });
});
