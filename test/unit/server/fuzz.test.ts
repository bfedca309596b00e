import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import { buildApp } from "../../../src/server/app";
import { defaultLimits } from "../../../src/server/config";
import type { Db } from "../../../src/server/db";
import { securityHeaders } from "../../../src/server/security-headers";
import { Storage } from "../../../src/server/storage";
import { rawExchange } from "./hardening-raw-http";
import { enroll, knownDelta, openTestDb, testPlan, updateBody, upload } from "./helpers";

/**
 * Acceptance of issue 12: a deterministic fuzz of hostile requests over every route the app declares,
 * in process and over a real socket on 127.0.0.1. No reply may be a 5xx, every reply carries the security
 * headers, nothing leaks a file from outside the app, and the database is the same afterwards.
 */

/** mulberry32: a small seeded generator, so every run sends the same requests. */
function seeded(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { int, pick, bytes };
}

/** Path segments no route should take: NULs, bad and overlong escapes, traversal, numbers out of range. */
const hostileSegments = [
  "%00",
  "a%00b",
  "%zz",
  "%",
  "%c0%af",
  "%ff%fe",
  "%ED%A0%80",
  "..%2f..%2f..%2fetc%2fpasswd",
  "%2e%2e",
  "..",
  "%5c..%5c",
  encodeURIComponent("x'; DROP TABLE sites; --"),
  encodeURIComponent('"><script>alert(1)</script>'),
  "%F0%9F%92%A9",
  "%E2%80%AE",
  "f".repeat(300),
  "UPPER-Case",
  "-1",
  "0",
  "1e3",
  "0x10",
  "99999999999999999999",
  "2147483648",
  "NaN",
  "Infinity",
  "%201",
  "null",
  "%7B%7D",
  "*",
];

const hostileBodies: { contentType?: string; payload: string | Buffer }[] = [
  { contentType: "application/json", payload: "" },
  { contentType: "application/json", payload: "{" },
  { contentType: "application/json", payload: '{"inviteCode":' },
  { contentType: "application/json", payload: "null" },
  { contentType: "application/json", payload: "[]" },
  { contentType: "application/json", payload: '"text"' },
  { contentType: "application/json", payload: "1e999" },
  { contentType: "application/json", payload: '{"__proto__":{"polluted":true}}' },
  { contentType: "application/json", payload: '{"constructor":{"prototype":{"polluted":true}}}' },
  { contentType: "application/json", payload: `${"[".repeat(5000)}${"]".repeat(5000)}` },
  { contentType: "application/json", payload: '{"inviteCode":"\\u0000"}' },
  { contentType: "application/json", payload: '{"inviteCode":"ZZZZ-ZZZZ-ZZZZ-ZZZZ\\u0000"}' },
  { contentType: "application/json", payload: '{"inviteCode":12345678}' },
  { contentType: "application/json", payload: '{"siteLabel":"North\\u0000"}' },
  { contentType: "application/json", payload: '{"siteLabel":"\\u0000","extra":1}' },
  { contentType: "application/json", payload: '{"minSites":"2"}' },
  { contentType: "application/json", payload: '{"minSites":true}' },
  { contentType: "application/json", payload: '{"minSites":1e999}' },
  { contentType: "application/json", payload: '{"deadline":"not a date"}' },
  { contentType: "application/json", payload: '{"deadline":null}' },
  {
    contentType: "application/json",
    payload: '{"loss":null,"accuracy":true,"modelVersion":0,"numExamples":1}',
  },
  { contentType: "application/json", payload: "\ufeff{}" },
  { contentType: "application/json; charset=utf-16", payload: "{}" },
  { contentType: "application/json", payload: "x".repeat(1_100_000) },
  { contentType: "text/plain", payload: "hello" },
  { contentType: "application/xml", payload: "<a/>" },
  { contentType: "multipart/form-data; boundary=x", payload: "--x\r\n\r\n--x--" },
  { contentType: "application/x-www-form-urlencoded", payload: "inviteCode=ZZZZ" },
  { contentType: "application/octet-stream", payload: Buffer.alloc(0) },
  { contentType: "application/octet-stream", payload: Buffer.alloc(100_000, 0xff) },
  { contentType: "", payload: "{}" },
  { payload: "{}" },
];

const methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] as const;

interface Route {
  method: string;
  url: string;
}

type Row = Record<string, unknown>;

/** Every row of every table in the public schema, as sorted JSON text per table. */
async function dump(db: Db): Promise<Record<string, string[]>> {
  const tables = await db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  const out: Record<string, string[]> = {};
  for (const { table_name: table } of tables) {
    const rows = await db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table}" t`);
    out[table] = rows.map((r) => r.row).sort();
  }
  return out;
}

describe("fuzz: hostile requests over every route", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let appDir: string;
  let port: number;
  let adminToken: string;
  let siteA: EnrollResponse;
  let siteB: EnrollResponse;
  let openInvite: string;
  const routes: Route[] = [];

  beforeAll(async () => {
    appDir = await mkdtemp(join(tmpdir(), "fedward-fuzz-dist-"));
    await mkdir(join(appDir, "assets"));
    await writeFile(join(appDir, "index.html"), "<!doctype html><title>fedward</title>");
    await writeFile(join(appDir, "assets", "main.js"), "export {};\n");
    db = await openTestDb();
    storage = new Storage(db);
    app = buildApp({
      config: {
        appDir,
        corsOrigins: "*",
        limits: { ...defaultLimits, requestTimeoutS: 1, headersTimeoutS: 1 },
      },
      storage,
    });
    // The plugins' routes, as they are declared; app.ts declares the other two at its root, before this hook.
    app.addHook("onRoute", (route) => {
      for (const method of [route.method].flat()) routes.push({ method, url: route.url });
    });
    routes.push({ method: "GET", url: "/api/health" }, { method: "GET", url: "/admin" });
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as AddressInfo).port;

    // A federation in round 2 with an open invite and a reporting plan, and a second federation.
    adminToken = (await storage.admin.ensureAdminToken()) as string;
    const plan = testPlan({ rounds: 3, evaluation: { holdoutFraction: 0.2, reportMetrics: true } });
    const a = await storage.createFederation(plan, ["A", "B", "C"]);
    siteA = await enroll(app, a.invites[0]?.code as string);
    const a2 = await enroll(app, a.invites[1]?.code as string);
    openInvite = a.invites[2]?.code as string;
    expect((await upload(app, siteA, 1, updateBody(1, knownDelta(1)))).statusCode).toBe(202);
    expect((await upload(app, a2, 1, updateBody(1, knownDelta(2)))).statusCode).toBe(202);
    const b = await storage.createFederation(testPlan(), ["D", "E"]);
    siteB = await enroll(app, b.invites[0]?.code as string);
  });
  afterAll(async () => {
    await app.close();
    await db.close();
    await rm(appDir, { recursive: true, force: true });
  });

  const statuses = new Map<number, number>();
  const failures: string[] = [];
  const check = (what: string, status: number, headers: Record<string, unknown>, body: string) => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status >= 500) failures.push(`${what}: ${status} ${body.slice(0, 200)}`);
    for (const [name, value] of Object.entries(securityHeaders)) {
      if (headers[name] !== value) failures.push(`${what}: ${status} without ${name}`);
    }
    if (/root:.*:0:0:|secret|stack|at \w+ \(/i.test(body))
      failures.push(`${what}: leaks ${body.slice(0, 200)}`);
  };

  it("answers ≥ 500 hostile requests with no 5xx, always with the security headers, and changes nothing", async () => {
    const random = seeded(12);
    const before = await dump(db);
    const started = performance.now();
    // Credentials that must never change anything: none, garbage, a wrong admin token, another
    // federation's site token. The admin token itself only ever comes with a hostile federation id.
    const strangers: Record<string, string>[] = [
      {},
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: `Bearer ${"A".repeat(8000)}` },
      { authorization: "Basic dXNlcjpwYXNz" },
      { authorization: `Bearer ${adminToken}x` },
      { authorization: `bearer ${adminToken} extra` },
      { authorization: `Bearer ${siteB.token}` },
    ];
    const requests: (InjectOptions & { what?: string })[] = [];
    const known = routes.filter((r) => r.method !== "HEAD");
    expect(known.map((r) => r.url)).toEqual(
      expect.arrayContaining([
        "/api/health",
        apiPaths.enroll,
        "/api/admin/federations/:federationId/invites",
      ]),
    );
    expect(known.map((r) => r.url)).toEqual(
      expect.arrayContaining(["/api/federations/:federationId/rounds/:round/update", "/*"]),
    );

    // 1. Every route, every param replaced by every hostile segment; the others plausible.
    for (const route of known) {
      const params = [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1] as string);
      for (const param of params) {
        for (const segment of hostileSegments) {
          const url = route.url.replace(/:(\w+)/g, (_, name: string) =>
            name === param ? segment : name === "federationId" ? siteA.federationId : "1",
          );
          // With a hostile federation id the admin token is safe to send; otherwise a stranger's credentials.
          const headers =
            param === "federationId" && route.url.startsWith("/api/admin/")
              ? { authorization: `Bearer ${adminToken}` }
              : random.pick(strangers);
          requests.push({
            method: route.method as "GET",
            url,
            headers,
            payload: route.method === "POST" ? {} : undefined,
          });
        }
      }
    }
    // 2. Every route with random methods, credentials, content types and bodies, under real ids.
    const realUrl = (route: Route) =>
      route.url.replace(/:(\w+)/g, (_, name: string) =>
        name === "federationId" ? siteA.federationId : name === "siteId" ? siteA.siteId : "1",
      );
    for (let i = 0; i < 260; i++) {
      const route = random.pick(known);
      const body = random.pick(hostileBodies);
      const headers: Record<string, string> = { ...random.pick(strangers) };
      if (body.contentType !== undefined) headers["content-type"] = body.contentType;
      if (random.int(4) === 0) headers["x-forwarded-for"] = "1.2.3.4";
      if (random.int(6) === 0) headers.origin = "https://evil.example";
      if (random.int(8) === 0) headers["content-encoding"] = "gzip";
      requests.push({
        method: random.int(3) === 0 ? random.pick(methods) : (route.method as "GET"),
        url: `${realUrl(route)}${random.int(5) === 0 ? "?__proto__[x]=1&a=%zz&b=%00" : ""}`,
        headers,
        payload: body.payload,
      });
    }
    // 3. Enrolment with everything but a usable invite, from addresses that share the rate limit.
    for (const body of hostileBodies) {
      requests.push({
        method: "POST",
        url: apiPaths.enroll,
        headers: body.contentType === undefined ? {} : { "content-type": body.contentType },
        payload: body.payload,
      });
    }
    for (const code of [`${openInvite}\u0000`, `${openInvite}x`, openInvite.slice(1), openInvite.repeat(2)]) {
      requests.push({ method: "POST", url: apiPaths.enroll, payload: { inviteCode: code } });
    }
    // 4. Static files and pages: traversal out of the app directory, odd names.
    for (const url of [
      "/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/assets/%00.js",
      "/assets/main.js%00.html",
      "/index.html/",
      "//etc/passwd",
      "/%5c..%5c..%5cetc%5cpasswd",
      "/admin/../../etc/passwd",
      `/${"a".repeat(5000)}`,
      "/assets/main.js?%zz",
    ]) {
      requests.push({ method: "GET", url });
    }

    for (const [i, request] of requests.entries()) {
      // Mostly distinct addresses, so that the rate limits do not hide what lies behind them.
      const remoteAddress = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      let response: Awaited<ReturnType<FastifyInstance["inject"]>>;
      try {
        response = await app.inject({ remoteAddress, ...request });
      } catch (error) {
        failures.push(`${request.method} ${request.url}: inject threw ${(error as Error).message}`);
        continue;
      }
      check(
        `${request.method} ${String(request.url).slice(0, 120)}`,
        response.statusCode,
        response.headers,
        response.body,
      );
    }
    const elapsedS = (performance.now() - started) / 1000;

    expect(failures).toEqual([]);
    expect(requests.length).toBeGreaterThanOrEqual(500);
    expect(await dump(db)).toEqual(before);
    console.log(
      `fuzz: ${requests.length} in-process requests over ${known.length} routes in ${elapsedS.toFixed(1)} s; ` +
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
  });

  it("answers raw hostile bytes on a real socket with no 5xx, the security headers, and changes nothing", async () => {
    const random = seeded(34);
    const before = await dump(db);
    const started = performance.now();
    const host = "Host: 127.0.0.1\r\n";
    const cases: { what: string; chunks: (string | Buffer)[]; untilClose?: boolean }[] = [];
    for (let i = 0; i < 24; i++)
      cases.push({ what: `random bytes ${i}`, chunks: [random.bytes(1 + random.int(3000))] });
    for (let i = 0; i < 8; i++) {
      cases.push({
        what: `random line ${i}`,
        chunks: [Buffer.concat([random.bytes(40), Buffer.from("\r\n\r\n")])],
      });
    }
    const lines = [
      `GET /api/health HTTP/1.1\r\n${host}X-A: a\u0000b\r\n\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}Bad Name: x\r\n\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}X-A: a\rb\r\n\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}X-A: a\r\n folded\r\n\r\n`,
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}`,
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `POST /api/enroll HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Length: -1\r\n\r\n`,
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Length: 99999999999999999999\r\n\r\n`,
      "GET /\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      `GET http://evil.example/api/health HTTP/1.1\r\n${host}\r\n`,
      `GET ../../etc/passwd HTTP/1.1\r\n${host}\r\n`,
      `GET /assets/../../../../etc/passwd HTTP/1.1\r\n${host}\r\n`,
      `GET /..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\n${host}\r\n`,
      `GET /api/admin/federations/%00/sites HTTP/1.1\r\n${host}Authorization: Bearer ${adminToken}\r\n\r\n`,
      `GET /api/federations/%zz/state HTTP/1.1\r\n${host}\r\n`,
      `GET /api/health HTTP/1.1\r\n\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}${host}\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}X-Big: ${"b".repeat(20_000)}\r\n\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}${Array.from({ length: 3000 }, (_, i) => `X-${i}: v`).join("\r\n")}\r\n\r\n`,
      `GET /${"p".repeat(20_000)} HTTP/1.1\r\n${host}\r\n`,
      `GET /api/health HTTP/9.9\r\n${host}\r\n`,
      `G\u00c9T /api/health HTTP/1.1\r\n${host}\r\n`,
      `GET /api/health HTTP/1.1\r\n${host}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
      `POST /api/enroll HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
      `GET /api/health HTTP/1.1\r\n${host}Content-Length: 3\r\n\r\nabc`,
    ];
    for (const [i, line] of lines.entries()) cases.push({ what: `malformed ${i}`, chunks: [line] });
    cases.push({
      what: "raw bytes 0x80-0xff in the path",
      chunks: [
        Buffer.concat([
          Buffer.from("GET /api/"),
          Buffer.from([0x80, 0xff, 0xfe]),
          Buffer.from(` HTTP/1.1\r\n${host}\r\n`),
        ]),
      ],
    });
    // Stalled requests, cut off by the 1 s request and headers timeouts.
    const stalled = [
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"inviteCode":"`,
      `POST /api/enroll HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"inv`,
      `POST /api/federations/${siteA.federationId}/rounds/2/update HTTP/1.1\r\n${host}Content-Length: 64\r\n\r\nxx`,
      `GET /api/health HTTP/1.1\r\n${host}X-Slow: `,
      "GET /api/hea",
      "",
    ];
    for (const [i, line] of stalled.entries())
      cases.push({ what: `stalled ${i}`, chunks: [line], untilClose: true });

    let noReply = 0;
    const replies = [];
    for (let i = 0; i < cases.length; i += 16) {
      const batch = cases.slice(i, i + 16);
      replies.push(
        ...(await Promise.all(batch.map((c) => rawExchange(port, c.chunks, 5000, c.untilClose === true)))),
      );
    }
    for (const [i, reply] of replies.entries()) {
      const what = (cases[i] as { what: string }).what;
      if (reply.status === 0) {
        noReply += 1;
        if (!reply.closed) failures.push(`${what}: no reply and the connection stayed open`);
        continue;
      }
      check(`raw ${what}`, reply.status, reply.headers, reply.body);
    }
    const elapsedS = (performance.now() - started) / 1000;

    expect(failures).toEqual([]);
    // Only a request that never sent a byte may go unanswered (there is nothing to answer).
    expect(noReply).toBeLessThanOrEqual(1);
    expect(await dump(db)).toEqual(before);
    console.log(
      `fuzz: ${cases.length} raw-socket requests in ${elapsedS.toFixed(1)} s (${noReply} without reply)`,
    );
  });

  it("answers a site's own hostile requests with no 5xx and leaves the federation's training state alone", async () => {
    const random = seeded(56);
    const core = async () => {
      const out: Record<string, Row[]> = {};
      for (const table of ["federations", "models", "updates", "invites"]) {
        out[table] = await db.query<Row>(`SELECT * FROM ${table} ORDER BY 1, 2`);
      }
      return out;
    };
    const before = await core();
    const site = { authorization: `Bearer ${siteA.token}` };
    const urls: string[] = [];
    for (const segment of hostileSegments) {
      urls.push(`/api/federations/${siteA.federationId}/models/${segment}`);
      urls.push(`/api/federations/${siteA.federationId}/rounds/${segment}/update`);
    }
    let sent = 0;
    for (const url of urls) {
      const body = random.pick(hostileBodies);
      const response = await app.inject({
        method: url.endsWith("/update") ? "POST" : "GET",
        url,
        headers: { ...site, ...(body.contentType ? { "content-type": body.contentType } : {}) },
        payload: url.endsWith("/update") ? body.payload : undefined,
        remoteAddress: `10.200.0.${sent % 250}`,
      });
      sent += 1;
      check(`site ${url.slice(0, 120)}`, response.statusCode, response.headers, response.body);
    }
    for (const body of hostileBodies) {
      for (const url of [apiPaths.update(siteA.federationId, 2), apiPaths.metrics(siteA.federationId)]) {
        const response = await app.inject({
          method: "POST",
          url,
          headers: { ...site, ...(body.contentType ? { "content-type": body.contentType } : {}) },
          payload: body.payload,
        });
        sent += 1;
        check(
          `site POST ${url} ${String(body.payload).slice(0, 40)}`,
          response.statusCode,
          response.headers,
          response.body,
        );
      }
    }

    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(await core()).toEqual(before);
  });
});
