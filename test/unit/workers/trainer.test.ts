import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { type Plan, parsePlan, siteUpdateTraining } from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import { buildModel, readWeights } from "../../../workers/train/model";
import type { ShardSource } from "../../../workers/train/trainer";
import * as trainer from "../../../workers/train/trainer";
import { seededFill } from "../core/support";
import { imagePlan } from "./image-plans";

/**
 * The training loop on tfjs's cpu backend in Node, with an in-memory shard source standing in for
 * IndexedDB (the browser e2e runs the same code against the real IndexedDB and WebGPU).
 */
const plan: Plan = parsePlan({
  id: "trainer-test",
  title: "trainer test",
  features: [0, 1, 2].map((i) => ({ name: `f${i}`, column: `c${i}`, type: "number", mean: 0, std: 1 })),
  label: { column: "y", positive: "yes", negative: "no" },
  model: { type: "mlp", hidden: [4], activation: "tanh" },
  training: { epochs: 3, batchSize: 16, optimizer: "adam", learningRate: 0.05 },
  privacy: { clipNorm: 1, noiseMultiplier: 0.5, delta: 1e-5, epsilonBudget: 100 },
  rounds: 1,
  minSites: 1,
});

/** An example's flat x and its label, from its running index k. */
type Example = (k: number) => { x: number[]; y: number };

/** Separable data: y = 1 when x0 + 0.5 x1 - x2 > 0. */
const linear: Example = (k) => {
  const x = [Math.sin(k * 1.3), Math.cos(k * 0.7), Math.sin(k * 2.9 + 1)];
  return { x, y: (x[0] as number) + 0.5 * (x[1] as number) - (x[2] as number) > 0 ? 1 : 0 };
};

/** Examples from index `first` on, in shards of uneven sizes, recording which shards are read. */
function source(sizes: number[], example: Example = linear, first = 0): ShardSource & { reads: number[] } {
  let k = first;
  const width = example(0).x.length;
  const shards = sizes.map((count) => {
    const x = new Float32Array(count * width);
    const y = new Float32Array(count);
    for (let i = 0; i < count; i++, k++) {
      const e = example(k);
      x.set(e.x, i * width);
      y[i] = e.y;
    }
    return { count, x, y };
  });
  const reads: number[] = [];
  return {
    reads,
    count: async () => sizes.reduce((a, b) => a + b, 0),
    shardCount: async () => shards.length,
    shard: async (i) => {
      reads.push(i);
      return shards[i] as (typeof shards)[number];
    },
  };
}

describe("trainer", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("streams every shard once per epoch and learns a separable task", async () => {
    // Prepare
    const model = await buildModel(plan);
    const train = source([50, 7, 64, 33]);
    const holdout = source([40]);
    const global = initialWeights(plan);
    const progress: number[] = [];

    // Execute
    const before = await trainer.evaluate(model, plan, global, holdout);
    const out = await trainer.fit(model, plan, global, train, (p) => progress.push(p.epoch));
    const after = await trainer.evaluate(model, plan, out.weights, holdout);

    // Assert
    expect(out.numExamples).toBe(154);
    expect(train.reads).toHaveLength(4 * siteUpdateTraining(plan).epochs);
    for (let e = 0; e < siteUpdateTraining(plan).epochs; e++) {
      expect([...train.reads.slice(4 * e, 4 * e + 4)].sort()).toEqual([0, 1, 2, 3]);
    }
    expect(progress).toHaveLength(siteUpdateTraining(plan).epochs * Math.ceil(154 / 16));
    expect(after.accuracy).toBeGreaterThan(0.85);
    expect(after.loss).toBeLessThan(before.loss);
    expect(out.weights).toEqual(await readWeights(model));
    expect(out.weights).not.toEqual(global);
    model.dispose();
  });

  it("trains a small CNN on 8×8 images, fed flat and reshaped to [n, 8, 8, 1], until it tells bars apart", async () => {
    // Prepare: a vertical bar (label 1) or a horizontal bar (label 0) at a varying place, on faint noise
    const cnn = imagePlan(
      { width: 8, height: 8, channels: 1 },
      { type: "cnn", conv: [{ filters: 4, kernel: 3, pool: 2 }], dense: [8], activation: "relu" },
      { epochs: 6, batchSize: 16, optimizer: "adam", learningRate: 0.02 },
    );
    const bars: Example = (k) => {
      const vertical = k % 2;
      const at = (k * 5) % 8;
      const x = Array.from({ length: 64 }, (_, p) => 0.15 * (0.5 + 0.5 * Math.sin(p * 2.3 + k)));
      for (let i = 0; i < 8; i++) x[vertical ? i * 8 + at : at * 8 + i] = 1;
      return { x, y: vertical };
    };
    const model = await buildModel(cnn);
    const global = initialWeights(cnn, new CryptoRandom(seededFill(5)));

    // Execute
    const before = await trainer.evaluate(model, cnn, global, source([48], bars, 1000));
    const out = await trainer.fit(model, cnn, global, source([64, 30, 66], bars), () => {});
    const after = await trainer.evaluate(model, cnn, out.weights, source([48], bars, 1000));

    // Assert
    expect(out.numExamples).toBe(160);
    expect(after.numExamples).toBe(48);
    expect(after.loss).toBeLessThan(before.loss / 2);
    expect(after.accuracy).toBeGreaterThan(0.9);
    model.dispose();
  });

  it("refuses shards stored for another input size", async () => {
    // Prepare: the 3-feature shards of the MLP plan, given to an 8×8 image plan
    const cnn = imagePlan(
      { width: 8, height: 8, channels: 1 },
      { type: "cnn", conv: [{ filters: 2, kernel: 3 }], dense: [], activation: "relu" },
    );
    const model = await buildModel(cnn);

    // Execute
    const fitting = trainer.fit(model, cnn, initialWeights(cnn), source([10]), () => {});

    // Assert
    await expect(fitting).rejects.toThrow(/holds 3 features per example but the plan has 64/);
    model.dispose();
  });

  it("refuses to train on an empty dataset", async () => {
    const model = await buildModel(plan);
    await expect(trainer.fit(model, plan, initialWeights(plan), source([]), () => {})).rejects.toThrow(
      /import data/,
    );
    model.dispose();
  });
});
