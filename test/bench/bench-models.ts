import { readFileSync } from "node:fs";
import { type Plan, parsePlan } from "../../src/core/plan";
import { imagePlan } from "../unit/workers/image-plans";

/**
 * The models every training benchmark measures (Node: train.ts; Chromium workers: worker-bench.ts; PyTorch:
 * train_torch.py): the WDBC demo's MLP (30 → 8 → 1) and a small CNN (28×28×1, conv 8 + pool, conv 16 +
 * pool, dense 32), with the steps and repeats each is timed over.
 */
export function benchModels(): [string, Plan, { steps: number; repeats: number }][] {
  const mlp = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
  const cnn = imagePlan(
    { width: 28, height: 28, channels: 1 },
    {
      type: "cnn",
      conv: [
        { filters: 8, kernel: 3, pool: 2 },
        { filters: 16, kernel: 3, pool: 2 },
      ],
      dense: [32],
      activation: "relu",
    },
    { epochs: 1, batchSize: 32, optimizer: "adam", learningRate: 0.01 },
  );
  return [
    ["mlp", mlp, { steps: 50, repeats: 5 }],
    ["cnn", cnn, { steps: 10, repeats: 5 }],
  ];
}
