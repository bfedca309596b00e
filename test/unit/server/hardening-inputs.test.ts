import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminPaths } from "../../../src/core/admin-protocol";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import { securityHeaders } from "../../../src/server/security-headers";
import type { Storage } from "../../../src/server/storage";
import {
  bearer,
  closeTestApp,
  enroll,
  federationWithSites,
  knownDelta,
  openTestApp,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

/** Issue 12, hardening: hostile values in URLs and JSON bodies get a 4xx with a sentence, never a 500. */
describe("coordinator app: hostile inputs", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let adminToken: string;
  let site: EnrollResponse;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    adminToken = (await storage.admin.ensureAdminToken()) as string;
    const plan = testPlan({ evaluation: { holdoutFraction: 0.2, reportMetrics: true } });
    [site] = (await federationWithSites(app, storage, plan)).sites as [EnrollResponse];
  });
  afterAll(() => closeTestApp({ app, db }));

  const expectHeaders = (response: { headers: Record<string, unknown> }, what: string) => {
    for (const [name, value] of Object.entries(securityHeaders))
      expect(response.headers[name], `${name} on ${what}`).toBe(value);
  };

  it("answers 400 for a NUL byte (or any character no federation id has) in a federation id, on every route", async () => {
    const admin = bearer(adminToken);
    const nul = "%00";
    const requests = [
      { url: `/api/admin/federations/${nul}/sites`, headers: admin },
      { url: `/api/admin/federations/${nul}/rounds`, headers: admin },
      { url: `/api/admin/federations/${nul}/metrics`, headers: admin },
      {
        method: "POST" as const,
        url: `/api/admin/federations/${nul}/invites`,
        headers: admin,
        payload: { siteLabel: "North" },
      },
      { url: `/api/admin/federations/a%00b/sites`, headers: admin },
      {
        url: `/api/admin/federations/${encodeURIComponent("x'; DROP TABLE sites; --")}/sites`,
        headers: admin,
      },
      { url: `/api/federations/${nul}/state`, headers: bearer(site.token) },
      { url: `/api/federations/${nul}/models/0`, headers: bearer(site.token) },
    ];

    for (const request of requests) {
      const response = await app.inject(request);

      expect(response.statusCode, request.url).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, request.url).toBeLessThan(500);
      expect(response.json().message, request.url).toEqual(expect.any(String));
      expectHeaders(response, request.url);
    }
    // The admin routes validate the id before any SQL sees it.
    const sites = await app.inject(requests[0] as { url: string; headers: Record<string, string> });
    expect(sites.statusCode).toBe(400);
    expect(sites.json().message).toMatch(/federationId/);
  });

  it("answers 400 for an invite label with a NUL byte or another control character, and stores nothing", async () => {
    const federationId = site.federationId;
    const before = (await storage.listInvites(federationId)).length;

    const replies = [];
    for (const siteLabel of ["North\u0000", "\u0000", "North\nSouth", "\u007f"]) {
      replies.push(
        await app.inject({
          method: "POST",
          url: adminPaths.invites(federationId),
          headers: bearer(adminToken),
          payload: { siteLabel },
        }),
      );
    }
    const fine = await app.inject({
      method: "POST",
      url: adminPaths.invites(federationId),
      headers: bearer(adminToken),
      payload: { siteLabel: "Hôpital Nord – Genève" },
    });

    for (const reply of replies) {
      expect(reply.statusCode).toBe(400);
      expect(reply.json().message).toMatch(/siteLabel/);
    }
    expect(fine.statusCode).toBe(201);
    expect((await storage.listInvites(federationId)).length).toBe(before + 1);
  });

  it("answers 400 with the security headers for a URL whose %-escapes are not UTF-8", async () => {
    for (const url of ["/api/federations/%zz/state", "/api/admin/federations/%c0%af/sites", "/%E0%A4%A"]) {
      const response = await app.inject({ url, headers: bearer(adminToken) });

      expect(response.statusCode, url).toBe(400);
      expectHeaders(response, url);
      expect(response.json().message, url).toMatch(/%-escape/);
    }
  });

  it("answers 414 with the security headers for a path part longer than any id", async () => {
    const url = adminPaths.sites("f".repeat(500));

    const response = await app.inject({ url, headers: bearer(adminToken) });

    expect(response.statusCode).toBe(414);
    expectHeaders(response, url);
    expect(response.json().message).toMatch(/longer than any id/);
  });

  it("refuses metrics whose values are not JSON numbers, where a coercing validator took null as 0 and true as 1", async () => {
    const send = (payload: Record<string, unknown>) =>
      app.inject({
        method: "POST",
        url: apiPaths.metrics(site.federationId),
        headers: bearer(site.token),
        payload,
      });
    const good = { modelVersion: 0, numExamples: 10, loss: 0.5, accuracy: 0.75 };

    const bad = [
      { ...good, loss: null, accuracy: true },
      { ...good, loss: null },
      { ...good, accuracy: true },
      { ...good, accuracy: false },
      { ...good, loss: "0.5" },
      { ...good, loss: [0.5] },
      { ...good, modelVersion: "0" },
      { ...good, numExamples: "10" },
      { ...good, numExamples: true },
    ];
    const refused = [];
    for (const payload of bad) refused.push(await send(payload));
    const accepted = await send(good);

    for (const [i, response] of refused.entries()) {
      expect(response.statusCode, JSON.stringify(bad[i])).toBe(400);
      expect(response.json().message).toMatch(/must be (number|integer)/);
    }
    expect(accepted.statusCode).toBe(200);
    const rows = await db.query<{ loss: number; accuracy: number }>(
      "SELECT loss, accuracy FROM site_metrics WHERE federation_id = $1",
      [site.federationId],
    );
    expect(rows).toEqual([{ loss: 0.5, accuracy: 0.75 }]);
  });

  it("answers 400 for a version or round of Infinity, which Ajv's coercion let past its integer check", async () => {
    const urls = [
      apiPaths.model(site.federationId, Number.POSITIVE_INFINITY),
      `/api/federations/${site.federationId}/models/-Infinity`,
      `/api/federations/${site.federationId}/models/1e999`,
    ];
    const replies = [];
    for (const url of urls) replies.push(await app.inject({ url, headers: bearer(site.token) }));
    const update = await upload(app, site, Number.POSITIVE_INFINITY, updateBody(1, knownDelta(1)));

    for (const reply of [...replies, update]) {
      expect(reply.statusCode).toBe(400);
      expect(reply.json().message).toMatch(/params\/(version|round) must be/);
    }
  });

  it("still reads integers from the URL (params are coerced, bodies are not)", async () => {
    const model = await app.inject({
      url: apiPaths.model(site.federationId, 0),
      headers: bearer(site.token),
    });
    const enrolBadType = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: 1234 },
    });

    expect(model.statusCode).toBe(200);
    expect(enrolBadType.statusCode).toBe(400);
    expect(enrolBadType.json().message).toMatch(/inviteCode must be string/);
  });

  it("answers 410 to an unused invite of a finished federation, and enrols nothing", async () => {
    const plan = testPlan({ rounds: 1 });
    const { federation, invites } = await storage.createFederation(plan, ["A", "B", "Late"]);
    const a = await enroll(app, invites[0]?.code as string);
    const b = await enroll(app, invites[1]?.code as string);
    expect((await upload(app, a, 1, updateBody(1, knownDelta(1)))).statusCode).toBe(202);
    expect((await upload(app, b, 1, updateBody(1, knownDelta(2)))).statusCode).toBe(202);
    expect((await storage.getFederation(federation.id))?.status).toBe("done");

    const late = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: invites[2]?.code },
    });

    expect(late.statusCode).toBe(410);
    expect(late.json().message).toMatch(/has finished all 1 rounds; a new site cannot train in it/);
    const sites = await db.query("SELECT id FROM sites WHERE federation_id = $1", [federation.id]);
    expect(sites).toHaveLength(2);
    expect((await storage.listInvites(federation.id)).find((i) => i.siteLabel === "Late")?.siteId).toBeNull();
  });
});
