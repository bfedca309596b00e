import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { type Plan, parsePlan } from "../../../src/core/plan";
import { buildModel, readWeights } from "../../../workers/train/model";
import type { ShardSource } from "../../../workers/train/trainer";
import * as trainer from "../../../workers/train/trainer";

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

/** Separable data: y = 1 when x0 + 0.5 x1 - x2 > 0, in shards of uneven sizes. */
function source(sizes: number[]): ShardSource & { reads: number[] } {
  let k = 0;
  const shards = sizes.map((count) => {
    const x = new Float32Array(count * 3);
    const y = new Float32Array(count);
    for (let i = 0; i < count; i++, k++) {
      const v = [Math.sin(k * 1.3), Math.cos(k * 0.7), Math.sin(k * 2.9 + 1)];
      x.set(v, i * 3);
      y[i] = (v[0] as number) + 0.5 * (v[1] as number) - (v[2] as number) > 0 ? 1 : 0;
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
    expect(train.reads).toHaveLength(4 * plan.training.epochs);
    for (let e = 0; e < plan.training.epochs; e++) {
      expect([...train.reads.slice(4 * e, 4 * e + 4)].sort()).toEqual([0, 1, 2, 3]);
    }
    expect(progress).toHaveLength(plan.training.epochs * Math.ceil(154 / 16));
    expect(after.accuracy).toBeGreaterThan(0.85);
    expect(after.loss).toBeLessThan(before.loss);
    expect(out.weights).toEqual(await readWeights(model));
    expect(out.weights).not.toEqual(global);
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
