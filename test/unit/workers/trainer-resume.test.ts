import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { type Plan, parsePlan } from "../../../src/core/plan";
import { buildModel } from "../../../workers/train/model";
import * as trainer from "../../../workers/train/trainer";

/**
 * Checkpoints at epoch boundaries and resuming from one, on tfjs's cpu backend in Node with in-memory shards
 * standing in for IndexedDB (test/e2e/resume.test.ts runs the same code in Chromium).
 */
const plan: Plan = parsePlan({
  id: "resume-test",
  title: "resume test",
  features: [0, 1].map((i) => ({ name: `f${i}`, column: `c${i}`, type: "number", mean: 0, std: 1 })),
  label: { column: "y", positive: "yes", negative: "no" },
  model: { type: "mlp", hidden: [3], activation: "tanh" },
  training: { epochs: 4, batchSize: 10, optimizer: "sgd", learningRate: 0.1 },
  privacy: { clipNorm: 1, noiseMultiplier: 0.5, delta: 1e-5, epsilonBudget: 100 },
  rounds: 1,
  minSites: 1,
});

/** 40 examples in 2 shards: y = 1 when x0 > x1. */
function source(): trainer.ShardSource {
  const shards = [0, 1].map((s) => {
    const x = new Float32Array(40);
    const y = new Float32Array(20);
    for (let i = 0; i < 20; i++) {
      const k = s * 20 + i;
      x[2 * i] = Math.sin(k * 1.7);
      x[2 * i + 1] = Math.cos(k * 0.9);
      y[i] = (x[2 * i] as number) > (x[2 * i + 1] as number) ? 1 : 0;
    }
    return { count: 20, x, y };
  });
  return {
    count: async () => 40,
    shardCount: async () => 2,
    shard: async (i) => shards[i] as trainer.ExampleShard,
  };
}

describe("trainer checkpoints", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("hands over the weights after every epoch, and a resumed fit trains only the epochs left, from them", async () => {
    // Prepare: a full fit that records its checkpoints
    const model = await buildModel(plan);
    const global = initialWeights(plan);
    const saved: { epoch: number; weights: Float32Array; loss: number }[] = [];
    const full = await trainer.fit(
      model,
      plan,
      global,
      source(),
      () => {},
      undefined,
      async (epoch, weights, loss) => {
        saved.push({ epoch, weights, loss });
      },
    );
    const second = saved[1] as (typeof saved)[number];
    const epochsRun: number[] = [];

    // Execute: resume after epoch 2 of 4
    const resumed = await trainer.fit(model, plan, global, source(), (p) => epochsRun.push(p.epoch), second);

    // Assert
    expect(saved.map((s) => s.epoch)).toEqual([1, 2, 3, 4]);
    expect(saved[3]?.weights).toEqual(full.weights);
    expect(second.weights).not.toEqual(global);
    expect(new Set(epochsRun)).toEqual(new Set([3, 4]));
    expect(epochsRun).toHaveLength(2 * 4); // 2 epochs of 4 batches of 10
    expect(resumed.numExamples).toBe(40);
    expect(resumed.weights).not.toEqual(second.weights);
    model.dispose();
  });

  it("a fit resumed after its last epoch trains nothing and returns the saved weights and loss", async () => {
    // Prepare
    const model = await buildModel(plan);
    const global = initialWeights(plan);
    const done = { epoch: 4, weights: global.map((w) => w + 0.25), loss: 0.3 };
    let progress = 0;

    // Execute
    const out = await trainer.fit(model, plan, global, source(), () => progress++, done);

    // Assert
    expect(progress).toBe(0);
    expect(out.weights).toEqual(done.weights);
    expect(out.metrics.loss).toBe(0.3);
    model.dispose();
  });
});
