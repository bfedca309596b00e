// fake-indexeddb stands in for the browser's IndexedDB (it must load before Dexie). The training worker's
// real api (workers/train.worker.ts) is called in Node: comlink's expose is replaced by a capture of the
// api object, and transfer by the identity, since Node has no worker around this module.
import "fake-indexeddb/auto";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { paramCount } from "../../../src/core/plan";
import { dpSgdGrid } from "../../../src/core/privacy/dp-sgd";
import type { PrivatizedDelta } from "../../../src/core/privacy/mechanism";
import { CryptoRandom } from "../../../src/core/random";
import { l2Norm } from "../../../src/core/vector";
import { openDb } from "../../../src/store/db";
import { checkpointOf } from "../../../src/store/round-state";
import type { ExampleSink } from "../../../workers/import/parser";
import { importDataset } from "../../../workers/import/shard-writer";
import { unitKey } from "../../../workers/import/units";
import { CLIP_SAFETY } from "../../../workers/train/per-example";
import type { TrainProgress } from "../../../workers/train/trainer";
import type { DpSgdRelease, TrainWorkerApi } from "../../../workers/train.worker";
import { seededFill } from "../core/support";
import { addInto, clipTo, dpSgdPlan, type Example, examplesOf, logisticGradient } from "./dp-sgd-support";

const exposed = vi.hoisted(() => ({ api: undefined as unknown }));
vi.mock("comlink", () => ({
  expose: (api: unknown) => {
    exposed.api = api;
  },
  transfer: <T>(value: T) => value,
}));

let worker: TrainWorkerApi;

beforeAll(async () => {
  await import("../../../workers/train.worker");
  worker = exposed.api as TrainWorkerApi;
  await tf.setBackend("cpu");
});

/**
 * Imports examples as the import worker does (importDataset, unit numbers from hashed patient keys),
 * everything in the train split, into the worker's own database (openDb()).
 */
async function importPatients(rows: { e: Example; patient?: string }[], units: boolean) {
  const meta = {
    federationId: `fed-${crypto.randomUUID()}`,
    planHash: "h",
    fileName: "t.csv",
    numFeatures: 3,
    holdoutFraction: 0,
    units,
  };
  return importDataset(openDb(), meta, async (sink: ExampleSink) => {
    for (const [i, { e, patient }] of rows.entries()) {
      await sink.add(
        Float32Array.from(e.x),
        e.y,
        i + 2,
        patient === undefined ? undefined : unitKey(patient),
      );
    }
    return { rowsRead: rows.length, rowsSkipped: 0, imputed: {} };
  });
}

function isDpSgd(r: DpSgdRelease | PrivatizedDelta): r is DpSgdRelease {
  return "mechanism" in r && r.mechanism === "dp-sgd";
}

describe("the training worker's fit for a dp-sgd plan (IndexedDB shards, real DP-SGD)", () => {
  it("returns a dp-sgd release whose steps, q, N, z, C, sigma and grid are the plan's at this site", async () => {
    // Prepare: 30 rows of 12 patients; the plan asks for an expected batch of 4 patients, 6 steps
    const plan = dpSgdPlan({
      learningRate: 0.3,
      privacy: {
        stepsPerRound: 6,
        expectedBatchSize: 4,
        samplingRate: undefined,
        clipNorm: 1.5,
        noiseMultiplier: 1.1,
      },
    });
    const rows = examplesOf(30, 3).map((e, i) => ({ e, patient: `MRN-${(i * 7) % 12}` }));
    const dataset = await importPatients(rows, true);
    const global = initialWeights(plan, new CryptoRandom(seededFill(21)));
    const progress: TrainProgress[] = [];
    await worker.init(plan, "cpu");

    // Execute
    const out = await worker.fit(global.slice(), dataset.id, (p) => progress.push(p), {
      federationId: dataset.federationId,
      round: 1,
      modelVersion: 0,
      planHash: "h",
    });

    // Assert
    expect(dataset.trainUnits).toBe(12);
    const released = out.released;
    if (!isDpSgd(released)) throw new Error("expected a dp-sgd release");
    const { grid } = dpSgdGrid({ clipNorm: 1.5, noiseMultiplier: 1.1 }, paramCount(plan));
    expect(released).toMatchObject({
      mechanism: "dp-sgd",
      steps: 6,
      samplingRate: 4 / 12,
      units: 12,
      noiseMultiplier: 1.1,
      clipNorm: 1.5,
      sigma: 1.1 * 1.5,
      grid,
    });
    expect(released.delta).toBeInstanceOf(Float32Array);
    expect(released.delta).toHaveLength(paramCount(plan));
    expect(released.norm).toBeCloseTo(l2Norm(released.delta), 10);
    expect(released.preClipNorm).toBe(released.norm);
    expect(released.postClipNorm).toBe(released.norm);
    expect(released.clippedFraction).toBeGreaterThanOrEqual(0);
    expect(released.clippedFraction).toBeLessThanOrEqual(1);
    expect(released.meanBatchUnits).toBeGreaterThanOrEqual(0);
    expect(out.numExamples).toBe(30);
    expect(progress.map((p) => [p.step, p.steps, p.epoch, p.epochs, p.batch, p.batches])).toEqual(
      Array.from({ length: 6 }, (_, i) => [i + 1, 6, i + 1, 6, 1, 1]),
    );
    expect(progress.at(-1)?.secondsLeft).toBe(0);
    expect(progress[0]?.secondsLeft).toBeGreaterThanOrEqual(0);
    // The checkpoint of the last step: steps counted in epoch/epochs, marked as dp-sgd
    const saved = await checkpointOf(openDb(), dataset.federationId);
    expect(saved).toMatchObject({ round: 1, epoch: 6, epochs: 6, mechanism: "dp-sgd", optimizer: "sgd" });
  });

  it("clips two rows of one patient together: the import's unit numbers reach DP-SGD", async () => {
    // Prepare: rows 0 and 1 are one patient (both large gradients), rows 2 and 3 two others; q = 1,
    // one SGD step with tiny noise
    const plan = dpSgdPlan({
      learningRate: 0.4,
      privacy: { stepsPerRound: 1, samplingRate: 1, clipNorm: 0.5, noiseMultiplier: 1e-3 },
    });
    const base = examplesOf(4, 3, 3);
    const first = base[0] as Example;
    const rows = [
      { e: first, patient: "PID-1" },
      { e: { x: first.x.map((v) => v * 0.9), y: first.y }, patient: "PID-1" },
      { e: base[2] as Example, patient: "PID-2" },
      { e: base[3] as Example, patient: "PID-3" },
    ];
    const dataset = await importPatients(rows, true);
    const global = initialWeights(plan, new CryptoRandom(seededFill(22)));
    await worker.init(plan, "cpu");

    // Execute
    const out = await worker.fit(global.slice(), dataset.id, () => {});

    // Assert: S = -delta N / lr with N = 3 patients equals clip(g0 + g1) + clip(g2) + clip(g3)
    const released = out.released;
    if (!isDpSgd(released)) throw new Error("expected a dp-sgd release");
    expect(released.units).toBe(3);
    const { effectiveClip } = dpSgdGrid({ clipNorm: 0.5, noiseMultiplier: 1e-3 }, paramCount(plan));
    const together = logisticGradient(global, rows[0]?.e as Example);
    addInto(together, logisticGradient(global, rows[1]?.e as Example));
    const expected = clipTo(together, effectiveClip, CLIP_SAFETY);
    const apart = new Float64Array(expected.length);
    for (const r of rows.slice(0, 2))
      addInto(apart, clipTo(logisticGradient(global, r.e), effectiveClip, CLIP_SAFETY));
    for (const r of rows.slice(2)) {
      const g = clipTo(logisticGradient(global, r.e), effectiveClip, CLIP_SAFETY);
      addInto(expected, g);
      addInto(apart, g);
    }
    const recovered = Array.from(released.delta, (d) => (d * 3) / -0.4);
    for (let i = 0; i < expected.length; i++)
      expect(Math.abs((recovered[i] as number) - (expected[i] as number))).toBeLessThan(4e-3);
    expect(Math.max(...Array.from(apart, (v, i) => Math.abs(v - (expected[i] as number))))).toBeGreaterThan(
      0.1,
    );
  });

  it("refuses a plan whose expected batch is more than this site's patients, naming the field", async () => {
    const plan = dpSgdPlan({ privacy: { expectedBatchSize: 20, samplingRate: undefined } });
    const dataset = await importPatients(
      examplesOf(12, 3).map((e) => ({ e })),
      false,
    );
    await worker.init(plan, "cpu");
    await expect(worker.fit(initialWeights(plan), dataset.id, () => {})).rejects.toThrow(
      /privacy\.expectedBatchSize is 20, more than the 12 training rows/,
    );
  });

  it("refuses to release a diverged round with the site-update path's words", async () => {
    // Prepare: noise of std 5e38 per step overflows float32's 3.4e38
    const plan = dpSgdPlan({ privacy: { stepsPerRound: 3, clipNorm: 1e38, noiseMultiplier: 5 } });
    const dataset = await importPatients(
      examplesOf(6, 3).map((e) => ({ e })),
      false,
    );
    await worker.init(plan, "cpu");

    // Execute
    const fitting = worker.fit(initialWeights(plan), dataset.id, () => {});

    // Assert
    await expect(fitting).rejects.toThrow(
      /^Local training diverged: weight \d+ of the update is (NaN|-?Infinity)\. Nothing was sent; ask the federation to lower the plan's learning rate\.$/,
    );
  });
});
