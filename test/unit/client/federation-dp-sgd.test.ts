// The site's round loop with a dp-sgd plan. fake-indexeddb stands in for the browser's IndexedDB; the
// training worker is the REAL one (workers/train.worker.ts: DP-SGD with the real per-unit clipping, noise
// and sampling on tfjs's cpu backend), called in Node with comlink's expose replaced by a capture of its api
// (and transfer, proxy by the identity), since no worker thread is around it. The coordinator is the real
// one (Fastify, PGlite) on a loopback port. One test fakes the trainer, only to check what the loop does
// with a release that breaks the plan's terms.
import "fake-indexeddb/auto";
import * as tf from "@tensorflow/tfjs";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkerBridge } from "../../../src/client/bridges";
import { CoordinatorClient } from "../../../src/client/coordinator";
import { type FederationEvent, runFederation } from "../../../src/client/federation";
import { type Plan, paramCount } from "../../../src/core/plan";
import { planPrivacy } from "../../../src/core/privacy/budget";
import { dpSgdGrid } from "../../../src/core/privacy/dp-sgd";
import { l2Norm } from "../../../src/core/vector";
import { decodeVector, WireKind } from "../../../src/core/wire";
import { type DatasetRow, type EnrollmentRow, openDb } from "../../../src/store/db";
import { importDataset } from "../../../workers/import/shard-writer";
import { unitKey } from "../../../workers/import/units";
import type { TrainWorkerApi } from "../../../workers/train.worker";
import { closeTestApp, openTestApp, type TestApp, testPlan } from "../server/helpers";
import { enrollSites } from "./enroll";

const exposed = vi.hoisted(() => ({ api: undefined as unknown }));
vi.mock("comlink", () => ({
  expose: (api: unknown) => {
    exposed.api = api;
  },
  transfer: <T>(value: T) => value,
  proxy: <T>(value: T) => value,
}));

let server: TestApp;
let baseUrl: string;
let worker: TrainWorkerApi;
/** The worker opens the app's database (openDb()); the page side uses the same one, as in a browser. */
const db = openDb();
const realFetch = globalThis.fetch;

beforeAll(async () => {
  await import("../../../workers/train.worker");
  worker = exposed.api as TrainWorkerApi;
  await tf.setBackend("cpu");
});

beforeEach(async () => {
  server = await openTestApp();
  baseUrl = await server.app.listen({ port: 0, host: "127.0.0.1" });
});

afterEach(async () => {
  vi.unstubAllGlobals();
  await closeTestApp(server);
});

function dpSgdPlan(privacy: Partial<Plan["privacy"]> = {}, rounds = 2): Plan {
  const plan = testPlan({ minSites: 1, rounds });
  return testPlan({
    minSites: 1,
    rounds,
    training: { optimizer: "sgd", learningRate: 0.3 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1.5,
      noiseMultiplier: 1.1,
      delta: plan.privacy.delta,
      epsilonBudget: 100,
      stepsPerRound: 5,
      expectedBatchSize: 4,
      ...privacy,
    },
  });
}

/** 60 rows of 20 patients (3 rows each), imported as the import worker does (hashed keys, unit numbers). */
async function importPatients(federationId: string): Promise<DatasetRow> {
  const meta = {
    federationId,
    planHash: "h",
    fileName: "site.csv",
    numFeatures: 3,
    holdoutFraction: 0.3,
    units: true,
  };
  return importDataset(db, meta, async (sink) => {
    for (let r = 0; r < 60; r++) {
      const x = Float32Array.of(Math.sin(r * 1.3), Math.cos(r * 0.7), Math.sin(r * 2.9 + 1));
      const y = (x[0] as number) - (x[2] as number) > 0 ? 1 : 0;
      await sink.add(x, y, r + 2, unitKey(`patient ${r % 20}`));
    }
    return { rowsRead: 60, rowsSkipped: 0, imputed: {} };
  });
}

/** The real worker behind the bridge the loop talks to, counting fits. */
function realTrainer() {
  let fits = 0;
  const api = {
    ...worker,
    fit: (...args: Parameters<TrainWorkerApi["fit"]>) => {
      fits++;
      return worker.fit(...args);
    },
  };
  const bridge = { api, guard: <T>(work: Promise<T>) => work } as unknown as WorkerBridge<TrainWorkerApi>;
  return { bridge, fits: () => fits };
}

/** Update uploads on their way out (site A's only: one site per federation here). */
function watchUploads() {
  const uploads: { round: number; body: Uint8Array }[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const match = /\/rounds\/(\d+)\/update$/.exec(String(input));
    if (match && init?.method === "POST")
      uploads.push({ round: Number(match[1]), body: new Uint8Array(init.body as Uint8Array) });
    return realFetch(input, init);
  });
  return uploads;
}

async function run(enrollment: EnrollmentRow, datasetId: string, bridge: WorkerBridge<TrainWorkerApi>) {
  const events: FederationEvent[] = [];
  await runFederation({
    enrollment,
    datasetId,
    client: new CoordinatorClient(baseUrl, enrollment.token),
    trainer: bridge,
    db,
    backend: "cpu",
    onEvent: (e) => events.push(e),
    signal: new AbortController().signal,
    pollMs: 20,
  });
  return events;
}

describe("a dp-sgd federation at the site (real training worker)", () => {
  it("records in each ledger row the plan's steps, q = B / N, N, z, C, sigma = z C, grid and epsilon after the round", async () => {
    // Prepare
    const plan = dpSgdPlan();
    const [enrollment] = (await enrollSites(server, baseUrl, db, plan)) as [EnrollmentRow];
    const dataset = await importPatients(enrollment.federationId);
    const N = dataset.trainUnits as number;
    const { bridge, fits } = realTrainer();
    const uploads = watchUploads();

    // Execute
    const events = await run(enrollment, dataset.id, bridge);

    // Assert
    expect(N).toBeGreaterThan(4);
    expect(N).toBeLessThan(20);
    expect(fits()).toBe(2);
    const ledger = await db.releases.where("federationId").equals(enrollment.federationId).sortBy("round");
    const { grid } = dpSgdGrid({ clipNorm: 1.5, noiseMultiplier: 1.1 }, paramCount(plan));
    const epsilon = planPrivacy(plan, N).epsilonPerRound;
    expect(ledger.map((r) => r.round)).toEqual([1, 2]);
    for (const [i, row] of ledger.entries()) {
      expect(row).toMatchObject({
        mechanism: "dp-sgd",
        steps: 5,
        samplingRate: 4 / N,
        units: N,
        noiseMultiplier: 1.1,
        clipNorm: 1.5,
        sigma: 1.1 * 1.5,
        grid,
        delta: 1e-5,
      });
      expect(row.epsilonAfter).toBeCloseTo(epsilon[i] as number, 10);
      expect(row.sentAt).toBeGreaterThan(0);
      const sent = decodeVector(uploads[i]?.body as Uint8Array, { kind: WireKind.update }).values;
      expect(row.preClipNorm).toBeCloseTo(l2Norm(sent), 6);
      expect(row.postClipNorm).toBe(row.preClipNorm);
    }
    expect(epsilon[1]).toBeGreaterThan(epsilon[0] as number);
    const progress = events.filter((e) => e.type === "progress");
    expect(progress).toHaveLength(10);
    const last = progress.at(-1);
    expect(last?.type === "progress" && [last.progress.step, last.progress.steps]).toEqual([5, 5]);
    const privacy = events.filter((e) => e.type === "privacy").at(-1);
    expect(privacy?.type === "privacy" && privacy.spent).toBeCloseTo(epsilon[1] as number, 10);
  });

  it("stops before the round that would spend more than the budget, by the dp-sgd accountant", async () => {
    // Prepare: a budget between epsilon after one round and after two
    const probe = dpSgdPlan();
    const [probeSite] = (await enrollSites(server, baseUrl, db, probe)) as [EnrollmentRow];
    const dataset = await importPatients(probeSite.federationId);
    const N = dataset.trainUnits as number;
    const [one, two] = planPrivacy(probe, N).epsilonPerRound as [number, number];
    const plan = dpSgdPlan({ epsilonBudget: (one + two) / 2 });
    const [enrollment] = (await enrollSites(server, baseUrl, db, plan)) as [EnrollmentRow];
    const { bridge, fits } = realTrainer();

    // Execute
    const events = await run(enrollment, dataset.id, bridge);

    // Assert
    expect(fits()).toBe(1);
    expect(await db.releases.where("federationId").equals(enrollment.federationId).count()).toBe(1);
    const stopped = events.find((e) => e.type === "stopped");
    expect(stopped?.type === "stopped" && stopped.text).toMatch(/does not take part in round 2/);
  });

  it("does not take part when the plan's expected batch is more than this site's patients, and says why", async () => {
    // Prepare
    const plan = dpSgdPlan({ expectedBatchSize: 50 });
    const [enrollment] = (await enrollSites(server, baseUrl, db, plan)) as [EnrollmentRow];
    const dataset = await importPatients(enrollment.federationId);
    const { bridge, fits } = realTrainer();
    const uploads = watchUploads();

    // Execute
    const events = await run(enrollment, dataset.id, bridge);

    // Assert
    expect(fits()).toBe(0);
    expect(uploads).toHaveLength(0);
    const stopped = events.find((e) => e.type === "stopped");
    expect(stopped?.type === "stopped" && stopped.text).toMatch(
      /privacy\.expectedBatchSize is 50, more than the \d+ training/,
    );
    expect((await db.rounds.get([enrollment.federationId, 1]))?.notSent).toBe(
      "the plan's batch does not fit this site's data",
    );
  });

  it("records and sends nothing when the worker's release does not match the plan (a fake trainer noising less)", async () => {
    // Prepare: a trainer that runs the real worker, then reports half the noise
    const plan = dpSgdPlan({}, 1);
    const [enrollment] = (await enrollSites(server, baseUrl, db, plan)) as [EnrollmentRow];
    const dataset = await importPatients(enrollment.federationId);
    const api = {
      ...worker,
      fit: async (...args: Parameters<TrainWorkerApi["fit"]>) => {
        const out = await worker.fit(...args);
        return { ...out, released: { ...out.released, sigma: out.released.sigma / 2 } };
      },
    };
    const bridge = { api, guard: <T>(work: Promise<T>) => work } as unknown as WorkerBridge<TrainWorkerApi>;
    const uploads = watchUploads();

    // Execute
    const running = run(enrollment, dataset.id, bridge);

    // Assert
    await expect(running).rejects.toThrow(
      /sigma 0\.825\d* instead of 1\.65\d*, .*nothing was recorded or sent/,
    );
    expect(uploads).toHaveLength(0);
    expect(await db.releases.where("federationId").equals(enrollment.federationId).count()).toBe(0);
  });
});
