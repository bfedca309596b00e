import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminMetricsResponse, adminPaths } from "../../../src/core/admin-protocol";
import type { Plan } from "../../../src/core/plan";
import { apiPaths, type EnrollResponse, MAX_METRICS_EXAMPLES } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import {
  bearer,
  closeTestApp,
  federationWithSites,
  knownDelta,
  openTestApp,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

/** A plan whose sites agreed to send their held-out metrics. */
function reportingPlan(overrides: Partial<Plan> = {}): Plan {
  return testPlan({ evaluation: { holdoutFraction: 0.2, reportMetrics: true }, ...overrides });
}

describe("coordinator app: sites' held-out metrics", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let adminToken: string;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    adminToken = (await storage.admin.ensureAdminToken()) as string;
  });
  afterAll(() => closeTestApp({ app, db }));

  // token null: no Authorization header at all.
  const report = (site: EnrollResponse, payload: unknown, token: string | null = site.token) =>
    app.inject({
      method: "POST",
      url: apiPaths.metrics(site.federationId),
      headers: token === null ? {} : bearer(token),
      payload: payload as Record<string, unknown>,
    });
  const adminMetrics = async (federationId: string) => {
    const response = await app.inject({ url: adminPaths.metrics(federationId), headers: bearer(adminToken) });
    expect(response.statusCode).toBe(200);
    return response.json<AdminMetricsResponse>();
  };

  it("stores each enrolled site's report and gives the admin the example-weighted means per model version", async () => {
    // Prepare: two sites; round 1 is aggregated, so model versions 0 and 1 exist.
    const { federation, sites } = await federationWithSites(app, storage, reportingPlan(), 2);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    expect((await upload(app, a, 1, updateBody(1, knownDelta(1)))).statusCode).toBe(202);
    expect((await upload(app, b, 1, updateBody(1, knownDelta(2)))).statusCode).toBe(202);

    // Execute
    const replies = [
      await report(a, { modelVersion: 0, numExamples: 30, loss: 0.7, accuracy: 0.5 }),
      await report(b, { modelVersion: 0, numExamples: 10, loss: 0.5, accuracy: 0.9 }),
      await report(a, { modelVersion: 1, numExamples: 30, loss: 0.4, accuracy: 0.8 }),
    ];
    const metrics = await adminMetrics(federation.id);

    // Assert
    expect(replies.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(replies[0]?.json()).toEqual({ modelVersion: 0, replaced: false });
    expect(metrics.reportMetrics).toBe(true);
    expect(metrics.versions.map((v) => v.modelVersion)).toEqual([0, 1]);
    const [v0, v1] = metrics.versions;
    // (30 * 0.5 + 10 * 0.9) / 40 = 0.6 and (30 * 0.7 + 10 * 0.5) / 40 = 0.65, not the unweighted 0.7 and 0.6.
    expect(v0).toMatchObject({ sitesReported: 2, numExamples: 40 });
    expect(v0?.meanAccuracy).toBeCloseTo(0.6, 12);
    expect(v0?.meanLoss).toBeCloseTo(0.65, 12);
    expect(v0?.sites.map((s) => [s.siteLabel, s.numExamples, s.accuracy, s.loss])).toEqual([
      ["Site 1", 30, 0.5, 0.7],
      ["Site 2", 10, 0.9, 0.5],
    ]);
    expect(v1).toMatchObject({ sitesReported: 1, numExamples: 30, meanAccuracy: 0.8, meanLoss: 0.4 });
  });

  it("keeps one report per site and model version: a repeat replaces the earlier one", async () => {
    // Prepare
    const { federation, sites } = await federationWithSites(app, storage, reportingPlan(), 2);
    const a = sites[0] as EnrollResponse;

    // Execute
    const first = await report(a, { modelVersion: 0, numExamples: 20, loss: 0.7, accuracy: 0.5 });
    const again = await report(a, { modelVersion: 0, numExamples: 20, loss: 0.6, accuracy: 0.55 });
    const metrics = await adminMetrics(federation.id);

    // Assert
    expect(first.json()).toEqual({ modelVersion: 0, replaced: false });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ modelVersion: 0, replaced: true });
    expect(metrics.versions).toHaveLength(1);
    expect(metrics.versions[0]).toMatchObject({ sitesReported: 1, meanAccuracy: 0.55, meanLoss: 0.6 });
  });

  it("answers 401 without a token and stores nothing", async () => {
    // Prepare
    const { federation, sites } = await federationWithSites(app, storage, reportingPlan(), 2);
    const body = { modelVersion: 0, numExamples: 20, loss: 0.7, accuracy: 0.5 };

    // Execute
    const none = await report(sites[0] as EnrollResponse, body, null);
    const wrong = await report(sites[0] as EnrollResponse, body, "not-a-token");

    // Assert
    expect(none.statusCode).toBe(401);
    expect(wrong.statusCode).toBe(401);
    expect((await adminMetrics(federation.id)).versions).toEqual([]);
  });

  it("answers 403 under a plan that does not ask for metrics, and the admin sees none", async () => {
    // Prepare: the sites approved a plan without evaluation.reportMetrics, so they never agreed to send any.
    const { federation, sites } = await federationWithSites(app, storage, testPlan(), 2);

    // Execute
    const response = await report(sites[0] as EnrollResponse, {
      modelVersion: 0,
      numExamples: 20,
      loss: 0.7,
      accuracy: 0.5,
    });
    const metrics = await adminMetrics(federation.id);

    // Assert
    expect(response.statusCode).toBe(403);
    expect(response.json().message).toMatch(/does not ask sites for metrics \(evaluation\.reportMetrics\)/);
    expect(metrics).toEqual({ reportMetrics: false, versions: [] });
    const [row] = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM site_metrics WHERE federation_id = $1",
      [federation.id],
    );
    expect(row?.n).toBe(0);
  });

  it("answers 409 for a model version the federation has not made", async () => {
    // Prepare: only version 0 exists.
    const { sites } = await federationWithSites(app, storage, reportingPlan(), 2);

    // Execute
    const response = await report(sites[0] as EnrollResponse, {
      modelVersion: 1,
      numExamples: 20,
      loss: 0.7,
      accuracy: 0.5,
    });

    // Assert
    expect(response.statusCode).toBe(409);
    expect(response.json().message).toMatch(/Model version 1 does not exist/);
  });

  it.each([
    [{ modelVersion: 0, numExamples: 20, loss: 0.7, accuracy: 1.5 }, /body\/accuracy must be <= 1/],
    [{ modelVersion: 0, numExamples: 20, loss: 0.7, accuracy: -0.1 }, /body\/accuracy must be >= 0/],
    [{ modelVersion: 0, numExamples: 20, loss: -1, accuracy: 0.5 }, /body\/loss must be >= 0/],
    [{ modelVersion: 0, numExamples: 2.5, loss: 0.7, accuracy: 0.5 }, /body\/numExamples must be integer/],
    [{ modelVersion: 0, numExamples: -1, loss: 0.7, accuracy: 0.5 }, /body\/numExamples must be >= 0/],
    [
      { modelVersion: 0, numExamples: MAX_METRICS_EXAMPLES + 1, loss: 0.7, accuracy: 0.5 },
      /body\/numExamples must be <= 10000000/,
    ],
    [{ modelVersion: -1, numExamples: 20, loss: 0.7, accuracy: 0.5 }, /body\/modelVersion must be >= 0/],
    [{ modelVersion: 0, numExamples: 20, accuracy: 0.5 }, /must have required property 'loss'/],
    [{ modelVersion: 0, numExamples: 20, loss: "low", accuracy: 0.5 }, /body\/loss must be number/],
  ])("answers 400 naming the field for %j", async (body, message) => {
    // Prepare
    const { sites } = await federationWithSites(app, storage, reportingPlan(), 2);

    // Execute
    const response = await report(sites[0] as EnrollResponse, body);

    // Assert
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(message);
  });

  it("answers 400 for a loss that overflows to Infinity (JSON has no Infinity, but 1e999 parses to it)", async () => {
    // Prepare
    const { sites } = await federationWithSites(app, storage, reportingPlan(), 2);
    const site = sites[0] as EnrollResponse;

    // Execute
    const response = await app.inject({
      method: "POST",
      url: apiPaths.metrics(site.federationId),
      headers: { ...bearer(site.token), "content-type": "application/json" },
      payload: '{"modelVersion":0,"numExamples":20,"loss":1e999,"accuracy":0.5}',
    });

    // Assert
    expect(response.statusCode).toBe(400);
    // Ajv's "number" is finite only.
    expect(response.json().message).toMatch(/body\/loss must be number/);
  });
});
