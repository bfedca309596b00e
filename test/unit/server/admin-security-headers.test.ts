import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminPaths } from "../../../src/core/admin-protocol";
import { apiPaths } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import { securityHeaders } from "../../../src/server/security-headers";
import { Storage } from "../../../src/server/storage";
import { bearer, closeTestApp, federationWithSites, openTestDb, testApp } from "./helpers";

const INDEX = "<!doctype html><title>fedward</title><main id=app></main>";

describe("coordinator app: security headers and the admin page", () => {
  let appDir: string;
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    appDir = await mkdtemp(join(tmpdir(), "fedward-dist-"));
    await mkdir(join(appDir, "assets"));
    await writeFile(join(appDir, "index.html"), INDEX);
    await writeFile(join(appDir, "assets", "main.js"), "export {};\n");
    db = await openTestDb();
    storage = new Storage(db);
    app = testApp(storage, appDir);
  });
  afterAll(async () => {
    await closeTestApp({ app, db });
    await rm(appDir, { recursive: true, force: true });
  });

  it("sends the strict policy as written", () => {
    expect(securityHeaders["content-security-policy"]).toBe(
      "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; " +
        "connect-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; " +
        "frame-ancestors 'none'; form-action 'self'",
    );
  });

  it("sends every header on the app's HTML, static files, API replies, errors and 404s", async () => {
    // Prepare
    const { sites } = await federationWithSites(app, storage);
    const site = sites[0];
    const requests = [
      { url: "/", status: 200 },
      { url: "/admin", status: 200 },
      { url: "/assets/main.js", status: 200 },
      { url: "/api/health", status: 200 },
      {
        url: apiPaths.state(site?.federationId as string),
        headers: bearer(site?.token as string),
        status: 200,
      },
      { url: apiPaths.state(site?.federationId as string), status: 401 },
      { url: adminPaths.federations, status: 401 },
      { url: "/no/such/file", status: 404 },
      { method: "POST" as const, url: apiPaths.enroll, payload: { inviteCode: "" }, status: 400 },
      {
        method: "OPTIONS" as const,
        url: apiPaths.enroll,
        headers: { origin: "https://app.example", "access-control-request-method": "POST" },
        status: 204,
      },
    ];

    for (const { status, ...request } of requests) {
      // Execute
      const response = await app.inject(request);

      // Assert
      expect(response.statusCode, request.url).toBe(status);
      for (const [name, value] of Object.entries(securityHeaders)) {
        expect(response.headers[name], `${name} on ${request.url}`).toBe(value);
      }
    }
  });

  it("serves the app's index.html at /admin", async () => {
    const response = await app.inject({ url: "/admin" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/html/);
    expect(response.body).toBe(INDEX);
  });

  it("serves the 'app not built' page at /admin when there is no build", async () => {
    const bare = testApp(storage);

    const response = await bare.inject({ url: "/admin" });

    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("npm run build");
    expect(response.headers["content-security-policy"]).toBe(securityHeaders["content-security-policy"]);
    await bare.close();
  });
});
