import { readFileSync } from "node:fs";
import { type Plan, parsePlan } from "../../src/core/plan";
import { cnnPlanJson } from "../unit/workers/image-plans";

type Json = Record<string, unknown>;

export interface BenchModel {
  /** Timed steps per repeat, and repeats (a figure is their median). */
  steps: number;
  repeats: number;
  /** The batch both the non-private and the DP-SGD benches use (the site-update plan's batchSize). */
  batch: number;
  /** The same model as a dp-sgd plan (no epochs or batch size), for test/bench/dp-sgd.ts. */
  dpSgd: Plan;
}

/** A dp-sgd plan's JSON as a site-update plan: the same model and optimizer, `batchSize`, one epoch. */
function siteUpdateVariant(raw: Json, batchSize: number): Plan {
  const { mechanism, stepsPerRound, samplingRate, expectedBatchSize, ...privacy } = raw.privacy as Json;
  return parsePlan({
    ...raw,
    training: { ...(raw.training as Json), epochs: 1, batchSize },
    privacy,
  });
}

/**
 * The models every training benchmark measures (Node: train.ts, dp-sgd.ts; Chromium workers:
 * worker-bench.ts; PyTorch: train_torch.py, dp_sgd_torch.py): the WDBC demo's MLP (30 → 8 → 1, SGD lr 1 as
 * its plan) at batch 64 and a small CNN (28×28×1, conv 8 + pool, conv 16 + pool, dense 32, Adam 0.01) at
 * batch 32, with the steps and repeats each is timed over. The demo plans are dp-sgd plans, which have no
 * batch size; the plan in each entry is its site-update twin (same model, optimizer and learning rate) at
 * the bench batch, which train.ts and worker-bench.ts's trainOnBatch benches take, and `dpSgd` the dp-sgd
 * plan itself.
 */
export function benchModels(): [string, Plan, BenchModel][] {
  const wdbc = JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")) as Json;
  const cnn: Json = {
    ...cnnPlanJson(),
    image: { width: 28, height: 28, channels: 1, source: "images", labels: { key: "folder" } },
    model: {
      type: "cnn",
      conv: [
        { filters: 8, kernel: 3, pool: 2 },
        { filters: 16, kernel: 3, pool: 2 },
      ],
      dense: [32],
      activation: "relu",
    },
    training: { optimizer: "adam", learningRate: 0.01 },
    // The digits demo's noise (public/demo/digits-plan.json), at an expected batch of the bench's 32.
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1,
      noiseMultiplier: 2.4,
      stepsPerRound: 15,
      expectedBatchSize: 32,
      delta: 1e-5,
      epsilonBudget: 8,
    },
  };
  return [
    ["mlp", siteUpdateVariant(wdbc, 64), { steps: 50, repeats: 5, batch: 64, dpSgd: parsePlan(wdbc) }],
    ["cnn", siteUpdateVariant(cnn, 32), { steps: 10, repeats: 5, batch: 32, dpSgd: parsePlan(cnn) }],
  ];
}
