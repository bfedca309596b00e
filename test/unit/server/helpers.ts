import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect } from "vitest";
import { tfjsModelJson } from "../../../src/core/model-format";
import { type Plan, parsePlan } from "../../../src/core/plan";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import { encodeVector, WireKind } from "../../../src/core/wire";
import { buildApp } from "../../../src/server/app";
import { type Config, loadConfig } from "../../../src/server/config";
import { type Db, openPglite } from "../../../src/server/db";
import { migrations, runMigrations } from "../../../src/server/migrations";
import { Storage } from "../../../src/server/storage";

/** 3 features, hidden [2]: 3*2 + 2 + 2*1 + 1 = 11 weights. */
export const TEST_PARAMS = 11;

export function testPlan(overrides: Partial<Plan> = {}): Plan {
  return parsePlan({
    id: "test-plan",
    title: "Test federation",
    features: ["a", "b", "c"].map((name, i) => ({ name, column: name, type: "number", mean: i, std: i + 1 })),
    label: { column: "y", positive: "yes", negative: "no" },
    model: { type: "mlp", hidden: [2], activation: "relu" },
    training: { epochs: 1, batchSize: 8, optimizer: "sgd", learningRate: 0.1 },
    privacy: { clipNorm: 1, noiseMultiplier: 0.5, delta: 1e-5, epsilonBudget: 100 },
    rounds: 2,
    minSites: 2,
    ...overrides,
  });
}

/** A real PGlite (in memory unless `dir` is given), migrated. */
export async function openTestDb(dir?: string): Promise<Db> {
  const db = await openPglite(dir);
  await runMigrations(db);
  return db;
}

export function testApp(storage: Storage, appDir = "/nonexistent/fedward-dist"): FastifyInstance {
  return buildApp({ config: { appDir, corsOrigins: "*" }, storage });
}

export interface TestApp {
  db: Db;
  storage: Storage;
  app: FastifyInstance;
}

/** A migrated PGlite database, storage over it and the app: what each route test file starts from. */
export async function openTestApp(): Promise<TestApp> {
  const db = await openTestDb();
  const storage = new Storage(db);
  return { db, storage, app: testApp(storage) };
}

export async function closeTestApp({ app, db }: Pick<TestApp, "app" | "db">): Promise<void> {
  await app.close();
  await db.close();
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export async function enroll(app: FastifyInstance, inviteCode: string): Promise<EnrollResponse> {
  const response = await app.inject({ method: "POST", url: "/api/enroll", payload: { inviteCode } });
  if (response.statusCode !== 200) throw new Error(`enroll failed: ${response.statusCode} ${response.body}`);
  return response.json<EnrollResponse>();
}

/** A federation with every invite used: returns the sites' enrolment replies in invite order. */
export async function federationWithSites(
  app: FastifyInstance,
  storage: Storage,
  plan = testPlan(),
  sites = 2,
) {
  const labels = Array.from({ length: sites }, (_, i) => `Site ${i + 1}`);
  const { federation, invites } = await storage.createFederation(plan, labels);
  const enrolled: EnrollResponse[] = [];
  for (const invite of invites) enrolled.push(await enroll(app, invite.code));
  return { federation, invites, sites: enrolled };
}

export function updateBody(round: number, values: Float32Array, numExamples = 10): Buffer {
  return Buffer.from(encodeVector({ kind: WireKind.update, round, numExamples, values }));
}

export function upload(app: FastifyInstance, site: EnrollResponse, round: number, body: Buffer) {
  return app.inject({
    method: "POST",
    url: `/api/federations/${site.federationId}/rounds/${round}/update`,
    headers: { ...bearer(site.token), "content-type": "application/octet-stream" },
    payload: body,
  });
}

/** A delta whose values differ per site and per weight, so a wrong mean or order shows. */
export function knownDelta(seed: number): Float32Array {
  // Small enough to stay within maxReleasedNorm of the test plan for every seed the tests use.
  return Float32Array.from({ length: TEST_PARAMS }, (_, i) => 0.01 * seed * (i + 1) - 0.0037 * i * i);
}

/** On an empty database: every migration applies once, a second run applies none, the tables exist. */
export async function expectMigrationsApplyOnce(db: Db): Promise<void> {
  const first = await runMigrations(db);
  const second = await runMigrations(db);
  expect(first).toEqual(migrations.map((m) => m.version));
  expect(second).toEqual([]);
  const recorded = await db.query<{ version: number }>(
    "SELECT version FROM schema_migrations ORDER BY version",
  );
  expect(recorded.map((r) => r.version)).toEqual(first);
  const tables = await db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  expect(tables.map((t) => t.table_name)).toEqual([
    "admin_token",
    "federations",
    "invites",
    "models",
    "refused_updates",
    "rounds",
    "schema_migrations",
    "site_metrics",
    "sites",
    "updates",
  ]);
}

/** Fetches the final model.json (as site a) and weights.bin (as site b) and checks both are served. */
export async function fetchFinalModel(
  app: FastifyInstance,
  plan: Plan,
  federationId: string,
  a: EnrollResponse,
  b: EnrollResponse,
) {
  const modelJson = await app.inject({
    url: apiPaths.finalModelJson(federationId),
    headers: bearer(a.token),
  });
  const weights = await app.inject({ url: apiPaths.finalWeights(federationId), headers: bearer(b.token) });
  expect(modelJson.statusCode).toBe(200);
  expect(modelJson.json()).toEqual(tfjsModelJson(plan));
  expect(weights.statusCode).toBe(200);
  return { modelJson, weights };
}

/**
 * A coordinator config for startCoordinator tests, in a temp data directory made before the file's tests
 * and removed after them: any free port, no built app, the WDBC demo plan, silent logs.
 */
export function tempCoordinatorConfig(prefix: string): { readonly dataDir: string; readonly config: Config } {
  const state = {} as { dataDir: string; config: Config };
  beforeAll(async () => {
    state.dataDir = await mkdtemp(join(tmpdir(), prefix));
    state.config = {
      ...loadConfig({}),
      port: 0,
      dataDir: state.dataDir,
      appDir: join(state.dataDir, "no-dist"),
      demoPlanPath: resolve("public/demo/wdbc-plan.json"),
      logLevel: "silent",
    };
  });
  afterAll(() => rm(state.dataDir, { recursive: true, force: true }));
  return state;
}
