import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminPaths } from "../../../src/core/admin-protocol";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import { buildApp } from "../../../src/server/app";
import { ConfigError, defaultLimits, loadConfig, type RequestLimits } from "../../../src/server/config";
import type { Db } from "../../../src/server/db";
import { AttemptWindow } from "../../../src/server/rate-limits";
import { securityHeaders } from "../../../src/server/security-headers";
import { Storage } from "../../../src/server/storage";
import { bearer, openTestDb, testPlan } from "./helpers";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Issue 12, hardening: enrolment and admin-token guessing are limited per client address. */
describe("coordinator app: rate limits", () => {
  let db: Db;
  let storage: Storage;
  let adminToken: string;
  const apps: FastifyInstance[] = [];
  beforeAll(async () => {
    db = await openTestDb();
    storage = new Storage(db);
    adminToken = (await storage.admin.ensureAdminToken()) as string;
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db.close();
  });

  const appWith = (limits: Partial<RequestLimits>) => {
    const app = buildApp({
      config: {
        appDir: "/nonexistent/fedward-dist",
        corsOrigins: "*",
        limits: { ...defaultLimits, ...limits },
      },
      storage,
    });
    apps.push(app);
    return app;
  };
  const enrolFrom = (app: FastifyInstance, remoteAddress: string, inviteCode: string) =>
    app.inject({ method: "POST", url: apiPaths.enroll, payload: { inviteCode }, remoteAddress });
  const adminFrom = (app: FastifyInstance, remoteAddress: string, token?: string) =>
    app.inject({
      url: adminPaths.federations,
      headers: token === undefined ? {} : bearer(token),
      remoteAddress,
    });

  it("refuses the enrolment after ENROLL_RATE_LIMIT requests from one address with 429 and Retry-After", async () => {
    const app = appWith({ enrollPerWindow: 3, rateLimitWindowS: 60 });
    const { invites } = await storage.createFederation(testPlan(), ["A", "B"]);
    const [a, b] = invites.map((invite) => invite.code) as [string, string];

    const within = [];
    for (let i = 0; i < 3; i++) within.push(await enrolFrom(app, "10.0.0.1", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"));
    const over = await enrolFrom(app, "10.0.0.1", a);
    const elsewhere = await enrolFrom(app, "10.0.0.2", b);

    expect(within.map((r) => r.statusCode)).toEqual([404, 404, 404]);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toMatchObject({ statusCode: 429, error: "Too Many Requests" });
    expect(over.json().message).toMatch(
      /^Too many enrolment requests from this address \(at most 3 in 60 s\); try again in \d+ s\.$/,
    );
    const retryAfter = Number(over.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    for (const [name, value] of Object.entries(securityHeaders)) expect(over.headers[name]).toBe(value);
    // The refused invite is still unused; another address enrolled as usual.
    expect((await storage.listInvites()).find((i) => i.code === a)?.siteId).toBeNull();
    expect(elsewhere.statusCode).toBe(200);
  });

  it("lets the address enrol again once the window has passed", async () => {
    const app = appWith({ enrollPerWindow: 1, rateLimitWindowS: 1 });

    const first = await enrolFrom(app, "10.0.1.1", "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
    const second = await enrolFrom(app, "10.0.1.1", "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
    await sleep(1100);
    const later = await enrolFrom(app, "10.0.1.1", "ZZZZ-ZZZZ-ZZZZ-ZZZZ");

    expect([first.statusCode, second.statusCode, later.statusCode]).toEqual([404, 429, 404]);
  });

  it("turns the enrolment limit off at 0", async () => {
    const app = appWith({ enrollPerWindow: 0 });

    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await enrolFrom(app, "10.0.2.1", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"));

    expect(replies.every((r) => r.statusCode === 404)).toBe(true);
  });

  it("lets 1000 sequential admin-token guesses from one address reach the check only ADMIN_TOKEN_FAILURE_LIMIT times", async () => {
    const app = appWith({ adminTokenFailuresPerWindow: 5, rateLimitWindowS: 60 });

    const statuses = [];
    for (let i = 0; i < 1000; i++) statuses.push((await adminFrom(app, "10.0.3.1", `guess-${i}`)).statusCode);
    const rightToken = await adminFrom(app, "10.0.3.1", adminToken);
    const otherAddress = await adminFrom(app, "10.0.3.2", adminToken);

    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    // Locked out, the right token gets 429 too: a hit must not tell itself apart from the misses.
    expect(rightToken.statusCode).toBe(429);
    expect(rightToken.json().message).toMatch(
      /Too many requests with a wrong admin token from this address \(5 in 60 s\)/,
    );
    expect(Number(rightToken.headers["retry-after"])).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(securityHeaders)) expect(rightToken.headers[name]).toBe(value);
    expect(otherAddress.statusCode).toBe(200);
  });

  it("counts guesses sent at once before any of them has failed", async () => {
    const app = appWith({ adminTokenFailuresPerWindow: 5, rateLimitWindowS: 60 });

    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => adminFrom(app, "10.0.4.1", `parallel-guess-${i}`)),
    );

    expect(replies.filter((r) => r.statusCode === 401)).toHaveLength(5);
    expect(replies.filter((r) => r.statusCode === 429)).toHaveLength(35);
  });

  it("does not count the right token, a request without a token, or other routes; counts a site's token", async () => {
    const app = appWith({ adminTokenFailuresPerWindow: 3, rateLimitWindowS: 60 });
    const { invites } = await storage.createFederation(testPlan(), ["A", "B"]);
    const site = (await enrolFrom(app, "10.0.5.9", invites[0]?.code as string)).json<EnrollResponse>();

    const right = [];
    for (let i = 0; i < 10; i++) right.push((await adminFrom(app, "10.0.5.1", adminToken)).statusCode);
    const none = [];
    for (let i = 0; i < 10; i++) none.push((await adminFrom(app, "10.0.5.1")).statusCode);
    const siteState = [];
    for (let i = 0; i < 10; i++) {
      const state = await app.inject({
        url: apiPaths.state(site.federationId),
        headers: bearer("not-a-site-token"),
        remoteAddress: "10.0.5.1",
      });
      siteState.push(state.statusCode);
    }
    const stillOpen = await adminFrom(app, "10.0.5.1", adminToken);
    const siteTokens = [];
    for (let i = 0; i < 4; i++) siteTokens.push((await adminFrom(app, "10.0.5.2", site.token)).statusCode);

    expect(right.every((s) => s === 200)).toBe(true);
    expect(none.every((s) => s === 401)).toBe(true);
    expect(siteState.every((s) => s === 401)).toBe(true);
    expect(stillOpen.statusCode).toBe(200);
    expect(siteTokens).toEqual([403, 403, 403, 429]);
  });
});

describe("AttemptWindow", () => {
  it("allows max attempts per window, refunds, and starts a new window when the old one ends", () => {
    let now = 1_000;
    const window = new AttemptWindow(2, 10_000, () => now);

    const taken = [window.take("a"), window.take("a"), window.take("a")];
    window.refund("a");
    const afterRefund = window.take("a");
    now += 4_000;
    const waiting = window.take("a");
    now += 6_000;
    const renewed = window.take("a");

    expect(taken).toEqual([undefined, undefined, 10]);
    expect(afterRefund).toBeUndefined();
    expect(waiting).toBe(6);
    expect(renewed).toBeUndefined();
    expect(window.take("b")).toBeUndefined();
  });
});

describe("loadConfig: request limits", () => {
  it("reads the limits and their defaults", () => {
    const defaults = loadConfig({}).limits;
    const set = loadConfig({
      REQUEST_TIMEOUT_S: "90",
      HEADERS_TIMEOUT_S: "15",
      RATE_LIMIT_WINDOW_S: "300",
      ENROLL_RATE_LIMIT: "0",
      ADMIN_TOKEN_FAILURE_LIMIT: "7",
    }).limits;

    expect(defaults).toEqual(defaultLimits);
    expect(defaults).toEqual({
      requestTimeoutS: 300,
      headersTimeoutS: 20,
      rateLimitWindowS: 60,
      enrollPerWindow: 30,
      adminTokenFailuresPerWindow: 30,
    });
    expect(set).toEqual({
      requestTimeoutS: 90,
      headersTimeoutS: 15,
      rateLimitWindowS: 300,
      enrollPerWindow: 0,
      adminTokenFailuresPerWindow: 7,
    });
  });

  it("names bad limits and what to set them to", () => {
    const load = () =>
      loadConfig({
        REQUEST_TIMEOUT_S: "0",
        HEADERS_TIMEOUT_S: "x",
        ENROLL_RATE_LIMIT: "-1",
        RATE_LIMIT_WINDOW_S: "1.5",
      });
    const headersAbove = () => loadConfig({ REQUEST_TIMEOUT_S: "10", HEADERS_TIMEOUT_S: "20" });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/REQUEST_TIMEOUT_S is "0"; set it to a whole number from 1 to 3600/);
    expect(load).toThrow(/HEADERS_TIMEOUT_S is "x"/);
    expect(load).toThrow(/ENROLL_RATE_LIMIT is "-1"/);
    expect(load).toThrow(/RATE_LIMIT_WINDOW_S is "1.5"/);
    expect(headersAbove).toThrow(/HEADERS_TIMEOUT_S \(20\) is above REQUEST_TIMEOUT_S \(10\)/);
  });
});
