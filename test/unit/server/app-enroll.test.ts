import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planHash } from "../../../src/core/plan";
import { apiPaths } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import { Storage } from "../../../src/server/storage";
import { bearer, closeTestApp, federationWithSites, openTestApp, testApp, testPlan } from "./helpers";

describe("coordinator app: enrolment, health, static files, errors", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
  });
  afterAll(() => closeTestApp({ app, db }));

  it("enrols a site with an invite and returns the plan, its hash and a token", async () => {
    const plan = testPlan();
    const { federation, invites } = await storage.createFederation(plan, ["North", "South"]);

    const response = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: invites[1]?.code },
    });

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ federationId: federation.id, siteLabel: "South", plan });
    expect(body.planHash).toBe(await planHash(plan));
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const state = await app.inject({ url: apiPaths.state(federation.id), headers: bearer(body.token) });
    expect(state.statusCode).toBe(200);
  });

  it("answers 404 for an unknown invite and 409 for a used one", async () => {
    const { invites } = await federationWithSites(app, storage);

    const unknown = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: "ZZZZ-ZZZZ" },
    });
    const reused = await app.inject({
      method: "POST",
      url: apiPaths.enroll,
      payload: { inviteCode: invites[0]?.code },
    });

    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({
      statusCode: 404,
      error: "Not Found",
      message: 'No invite has the code "ZZZZ-ZZZZ"; check it for typos.',
    });
    expect(reused.statusCode).toBe(409);
    expect(reused.json().message).toMatch(/has already been used/);
  });

  it("answers 400 for an enrolment body without an invite code", async () => {
    const response = await app.inject({ method: "POST", url: apiPaths.enroll, payload: { code: "x" } });

    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/inviteCode/);
  });

  it("reports health", async () => {
    const response = await app.inject({ url: "/api/health" });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true });
  });

  it("tells to build the app when the app directory is missing", async () => {
    const response = await app.inject({ url: "/" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/html/);
    expect(response.body).toContain("npm run build");
  });

  it("serves the built app when its directory exists", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fedward-dist-"));
    await writeFile(join(dir, "index.html"), "<!doctype html><title>fedward app</title>");
    const withApp = testApp(storage, dir);

    const response = await withApp.inject({ url: "/" });

    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("fedward app");
    await withApp.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("allows cross-origin calls with a bearer token", async () => {
    const response = await app.inject({
      method: "OPTIONS",
      url: apiPaths.state("any"),
      headers: {
        origin: "https://app.example.org",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });

    expect(response.statusCode).toBe(204);
    expect(response.headers["access-control-allow-origin"]).toBe("*");
    expect(String(response.headers["access-control-allow-headers"])).toMatch(/Authorization/);
  });

  it("hides internals in 5xx replies", async () => {
    // Prepare: a storage whose state query fails with a message that must not leak.
    class BrokenStorage extends Storage {
      override async getState(): Promise<never> {
        throw new Error('relation "secret_table" does not exist at /srv/fedward/db');
      }
    }
    const broken = testApp(new BrokenStorage(db));
    const { sites } = await federationWithSites(broken, storage);
    const site = sites[0];
    if (!site) throw new Error("no site");

    // Execute
    const response = await broken.inject({
      url: apiPaths.state(site.federationId),
      headers: bearer(site.token),
    });

    // Assert
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({
      statusCode: 500,
      error: "Internal Server Error",
      message: "The coordinator could not handle this request; the error is in its log. Try again later.",
    });
    expect(response.body).not.toMatch(/secret_table|\/srv/);
    await broken.close();
  });
});
