// In this unit test, fake-indexeddb stands in for the browser's IndexedDB and a fake training worker (no
// tfjs: it "trains" epoch by epoch and saves a checkpoint after each, as workers/train.worker.ts does, then
// releases core's real mechanism on a made-up delta) stands in for the worker; a "closed page" is an abort
// while the worker never answers again. The coordinator is the real one (Fastify, PGlite) on a loopback
// port, reached with Node's fetch. test/e2e/resume.test.ts covers the browser.
import "fake-indexeddb/auto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkerBridge } from "../../../src/client/bridges";
import { CoordinatorClient } from "../../../src/client/coordinator";
import { type FederationEvent, runFederation } from "../../../src/client/federation";
import { type Plan, paramCount, siteUpdateTraining } from "../../../src/core/plan";
import { privatizeDelta } from "../../../src/core/privacy/mechanism";
import { encodeVector, WireKind } from "../../../src/core/wire";
import { type EnrollmentRow, type FedwardDb, openDb } from "../../../src/store/db";
import { saveCheckpoint } from "../../../src/store/round-state";
import type { TrainProgress } from "../../../workers/train/trainer";
import type { FitCheckpoint, TrainWorkerApi } from "../../../workers/train.worker";
import { closeTestApp, openTestApp, type TestApp, testPlan } from "../server/helpers";
import { enrollSites } from "./enroll";

let server: TestApp;
let baseUrl: string;
let db: FedwardDb;
const realFetch = globalThis.fetch;
const DATASET = "dataset-1";

beforeEach(async () => {
  server = await openTestApp();
  baseUrl = await server.app.listen({ port: 0, host: "127.0.0.1" });
  db = openDb(`fedward-resume-${crypto.randomUUID()}`);
});

afterEach(async () => {
  vi.unstubAllGlobals();
  db.close();
  await closeTestApp(server);
});

/** A federation (minSites 1) with the given sites; the first one's enrollment is stored as the page does. */
const enrolledSites = (plan: Plan, labels = ["Site A"]) => enrollSites(server, baseUrl, db, plan, labels);

interface Fit {
  round: number;
  /** The epoch the fit started after (0: from the global model). */
  resumedFrom: number;
  resumeWeights?: Float32Array;
  epochs: number[];
}

/**
 * The fake worker trains epoch by epoch, saving a checkpoint after each (weights = global + epoch / 100).
 * `closeAfter` = [round, epoch]: after saving that epoch the page "closes": the run is aborted and this fit
 * never settles, like a call into a worker that died with its page.
 */
function fakeTrainer(plan: Plan, closing?: { round: number; epoch: number; abort: AbortController }) {
  const fits: Fit[] = [];
  const api = {
    init: async () => ({ backend: "cpu", reason: "fake trainer of a unit test", measured: [] }),
    evaluate: async () => ({ accuracy: 0.5, loss: 0.7, numExamples: 10 }),
    fit: async (
      global: Float32Array,
      datasetId: string,
      onProgress: (p: TrainProgress) => void,
      checkpoint: FitCheckpoint,
    ) => {
      const { epochs } = siteUpdateTraining(plan);
      const from = checkpoint.resume?.epoch ?? 0;
      const fit: Fit = { round: checkpoint.round, resumedFrom: from, epochs: [] };
      if (checkpoint.resume) fit.resumeWeights = checkpoint.resume.weights;
      fits.push(fit);
      for (let epoch = from + 1; epoch <= epochs; epoch++) {
        fit.epochs.push(epoch);
        onProgress({ epoch, epochs, batch: 1, batches: 1, loss: 0.5, examplesPerSecond: 1000 });
        await saveCheckpoint(db, {
          ...checkpoint,
          datasetId,
          epoch,
          epochs,
          optimizer: plan.training.optimizer,
          weights: global.map((w) => w + epoch / 100),
          loss: 0.5,
          savedAt: Date.now(),
        });
        if (closing && closing.round === checkpoint.round && closing.epoch === epoch) {
          closing.abort.abort(new DOMException("The page was closed.", "AbortError"));
          return new Promise<never>(() => {});
        }
      }
      return {
        numExamples: 10,
        metrics: { loss: 0.5, examplesPerSecond: 1000 },
        released: privatizeDelta(new Float32Array(global.length).fill(0.01), plan.privacy),
      };
    },
  };
  const bridge = { api, guard: <T>(work: Promise<T>) => work } as unknown as WorkerBridge<TrainWorkerApi>;
  return { bridge, fits };
}

/** Counts update uploads on their way out; `closeOnFirst` aborts the run as the first one leaves. */
function watchUploads(closeOnFirst?: AbortController) {
  const uploads: { round: number; body: Uint8Array }[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const match = /\/rounds\/(\d+)\/update$/.exec(String(input));
    if (match && init?.method === "POST") {
      uploads.push({ round: Number(match[1]), body: new Uint8Array(init.body as Uint8Array) });
      if (closeOnFirst && uploads.length === 1) {
        closeOnFirst.abort(new DOMException("The page was closed.", "AbortError"));
        throw new DOMException("The page was closed.", "AbortError");
      }
    }
    return realFetch(input, init);
  });
  return uploads;
}

function run(enrollment: EnrollmentRow, bridge: WorkerBridge<TrainWorkerApi>, signal: AbortSignal) {
  const events: FederationEvent[] = [];
  const done = runFederation({
    enrollment,
    datasetId: DATASET,
    client: new CoordinatorClient(baseUrl, enrollment.token),
    trainer: bridge,
    db,
    backend: "cpu",
    onEvent: (e) => events.push(e),
    signal,
    pollMs: 20,
  });
  const statuses = () => events.flatMap((e) => (e.type === "status" ? [e.text] : []));
  return { done, events, statuses };
}

describe("resuming a round after the page was away", () => {
  it("continues from the saved epoch after a reload mid-training, and after a second one mid-upload sends the recorded bytes: one upload accepted per round", async () => {
    // Prepare: 5 epochs a round; the page closes after epoch 2 of round 1, then again as round 1's upload leaves
    const plan = testPlan({ minSites: 1, rounds: 2, training: { ...testPlan().training, epochs: 5 } });
    const [enrollment] = (await enrolledSites(plan)) as [EnrollmentRow];
    const closing = new AbortController();
    const { bridge, fits } = fakeTrainer(plan, { round: 1, epoch: 2, abort: closing });
    const first = run(enrollment, bridge, closing.signal);
    await expect(first.done).rejects.toMatchObject({ name: "AbortError" });
    const saved = await db.checkpoints.toArray();
    const midUpload = new AbortController();
    const uploads = watchUploads(midUpload);

    // Execute: the page opened again, closed again mid-upload, and opened a third time
    const second = run(enrollment, bridge, midUpload.signal);
    await expect(second.done).rejects.toThrow(/closed/);
    const checkpointsAfterRelease = await db.checkpoints.count();
    const third = run(enrollment, bridge, new AbortController().signal);
    await third.done;

    // Assert
    expect(saved).toHaveLength(1);
    expect(saved[0]).toMatchObject({ round: 1, epoch: 2, epochs: 5, modelVersion: 0, datasetId: DATASET });
    expect(fits.map((f) => [f.round, f.resumedFrom, f.epochs])).toEqual([
      [1, 0, [1, 2]],
      [1, 2, [3, 4, 5]],
      [2, 0, [1, 2, 3, 4, 5]],
    ]);
    expect(fits[1]?.resumeWeights).toEqual(saved[0]?.weights);
    expect(second.statuses()).toContain(
      "Round 1 of 2: continuing the training saved on this computer after epoch 2 of 5 (3 left)…",
    );
    expect((await db.rounds.get([enrollment.federationId, 1]))?.resumedFromEpoch).toBe(2);
    expect(checkpointsAfterRelease).toBe(0); // the release replaced the checkpoint
    expect(uploads.map((u) => u.round)).toEqual([1, 1, 2]);
    expect(uploads[1]?.body).toEqual(uploads[0]?.body);
    expect((await db.releases.toArray()).map((r) => [r.round, r.sentAt !== undefined])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(await db.checkpoints.count()).toBe(0);
    const rounds = await server.db.query<{ round: number; n: number }>(
      "SELECT round, count(*)::int AS n FROM updates WHERE federation_id = $1 GROUP BY round ORDER BY round",
      [enrollment.federationId],
    );
    expect(rounds).toEqual([
      { round: 1, n: 1 },
      { round: 2, n: 1 },
    ]);
    expect(third.events.some((e) => e.type === "done")).toBe(true);
  });

  it("drops a checkpoint made from another global model version and trains the round from the start", async () => {
    // Prepare: a checkpoint of round 1 that claims to start from model version 7
    const plan = testPlan({ minSites: 1, rounds: 1, training: { ...testPlan().training, epochs: 3 } });
    const [enrollment] = (await enrolledSites(plan)) as [EnrollmentRow];
    await saveCheckpoint(db, {
      federationId: enrollment.federationId,
      round: 1,
      modelVersion: 7,
      planHash: enrollment.planHash,
      datasetId: DATASET,
      epoch: 2,
      epochs: 3,
      optimizer: "sgd",
      weights: new Float32Array(paramCount(plan)),
      loss: 0.4,
      savedAt: Date.now(),
    });
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();

    // Execute
    const { done, statuses } = run(enrollment, bridge, new AbortController().signal);
    await done;

    // Assert
    expect(fits.map((f) => [f.round, f.resumedFrom, f.epochs])).toEqual([[1, 0, [1, 2, 3]]]);
    expect(statuses()).toContain(
      "The coordinator's global model is not the one this site's saved training of round 1 started from " +
        "(version 7, now 0), so that training is dropped and round 1 starts over from the current model.",
    );
    expect((await db.rounds.get([enrollment.federationId, 1]))?.resumedFromEpoch).toBeUndefined();
    expect(uploads.map((u) => u.round)).toEqual([1]);
    expect(await db.checkpoints.count()).toBe(0);
  });

  it("when the round closed while the site was away, says so, drops that training and joins the current round", async () => {
    // Prepare: Site A closes after epoch 1 of round 1; Site B's update then closes round 1 (minSites 1)
    const plan = testPlan({ minSites: 1, rounds: 2, training: { ...testPlan().training, epochs: 3 } });
    const [siteA, siteB] = (await enrolledSites(plan, ["Site A", "Site B"])) as [
      EnrollmentRow,
      EnrollmentRow,
    ];
    const closing = new AbortController();
    const { bridge, fits } = fakeTrainer(plan, { round: 1, epoch: 1, abort: closing });
    await expect(run(siteA, bridge, closing.signal).done).rejects.toMatchObject({ name: "AbortError" });
    const values = new Float32Array(paramCount(plan));
    const body = encodeVector({ kind: WireKind.update, round: 1, numExamples: 0, values });
    await new CoordinatorClient(baseUrl, siteB.token).upload(siteB.federationId, 1, body);
    const uploads = watchUploads();

    // Execute: Site A's page opened again
    const again = run(siteA, bridge, new AbortController().signal);
    await again.done;

    // Assert
    expect(again.statuses()).toContain(
      "Round 1 closed while this site was away, so its unfinished training (epoch 1 of 3) is dropped and " +
        "nothing was sent for it. This site joins round 2 of 2 with the new global model.",
    );
    expect(fits.map((f) => [f.round, f.resumedFrom])).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(uploads.map((u) => u.round)).toEqual([2]);
    expect((await db.releases.toArray()).map((r) => r.round)).toEqual([2]);
    expect(await db.checkpoints.count()).toBe(0);
  });
});
