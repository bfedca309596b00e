import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../../src/server/app";
import { defaultLimits } from "../../../src/server/config";
import type { Db } from "../../../src/server/db";
import { securityHeaders } from "../../../src/server/security-headers";
import { Storage } from "../../../src/server/storage";
import { rawExchange } from "./hardening-raw-http";
import { openTestDb } from "./helpers";

/**
 * Issue 12, hardening, on a real listening server (127.0.0.1 only): the replies Node writes itself carry
 * the security headers, and a request that stops half-way is cut off instead of holding its connection.
 */
describe("coordinator server: Node's own replies and timeouts", () => {
  let db: Db;
  let app: FastifyInstance;
  let port: number;
  beforeAll(async () => {
    db = await openTestDb();
    app = buildApp({
      config: {
        appDir: "/nonexistent/fedward-dist",
        corsOrigins: "*",
        limits: { ...defaultLimits, requestTimeoutS: 1, headersTimeoutS: 1 },
      },
      storage: new Storage(db),
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  const expectHeaders = (headers: Record<string, string>, what: string) => {
    for (const [name, value] of Object.entries(securityHeaders))
      expect(headers[name], `${name} on ${what}`).toBe(value);
  };

  it("cuts off an enrolment whose body stops half-way, with 408 and the security headers", async () => {
    const head =
      "POST /api/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";

    const reply = await rawExchange(port, [head, '{"inviteCode":"ABCD'], 6000, true);

    expect(reply.closed, "the coordinator closed the connection").toBe(true);
    expect(reply.elapsedMs).toBeLessThan(4000);
    expect(reply.status).toBe(408);
    expect(reply.body).toMatch(/did not arrive in time/);
    expectHeaders(reply.headers, "408");
  });

  it("cuts off a request whose headers never end", async () => {
    const reply = await rawExchange(
      port,
      ["GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "],
      6000,
      true,
    );

    expect(reply.closed).toBe(true);
    expect(reply.elapsedMs).toBeLessThan(4000);
    expect(reply.status).toBe(408);
    expectHeaders(reply.headers, "408 on headers");
  });

  it("answers 431 for oversized headers and 400 for what is not HTTP, with the security headers", async () => {
    const huge = `GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`;

    const overflow = await rawExchange(port, [huge], 3000);
    const garbage = await rawExchange(port, ["\u0000\u0001\u0002 nonsense\r\n\r\n"], 3000);
    const badMethod = await rawExchange(port, ["G@T / HTTP/1.1\r\nHost: x\r\n\r\n"], 3000);

    expect(overflow.status).toBe(431);
    expectHeaders(overflow.headers, "431");
    expect(overflow.body).toMatch(/headers are larger/);
    for (const reply of [garbage, badMethod]) {
      expect(reply.status).toBe(400);
      expectHeaders(reply.headers, "400 from the parser");
      expect(reply.body).toMatch(/not valid HTTP\/1\.1/);
    }
  });

  it("sends the security headers on Node's 400 for a request without Host, and on the router's 400 and 414", async () => {
    const noHost = await rawExchange(port, ["GET /api/health HTTP/1.1\r\n\r\n"], 3000);
    const badEscape = await rawExchange(
      port,
      ["GET /api/federations/%zz/state HTTP/1.1\r\nHost: x\r\n\r\n"],
      3000,
    );
    const long = await rawExchange(
      port,
      [`GET /api/admin/federations/${"f".repeat(300)}/sites HTTP/1.1\r\nHost: x\r\n\r\n`],
      3000,
    );
    const health = await rawExchange(
      port,
      ["GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
      3000,
    );

    expect(noHost.status).toBe(400);
    expectHeaders(noHost.headers, "400 without Host");
    expect(badEscape.status).toBe(400);
    expectHeaders(badEscape.headers, "400 bad escape");
    expect(long.status).toBe(414);
    expectHeaders(long.headers, "414");
    expect(health.status).toBe(200);
    expectHeaders(health.headers, "200");
  });
});
