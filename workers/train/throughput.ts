import * as tf from "@tensorflow/tfjs";
import { inputShape, inputWidth, type Plan } from "../../src/core/plan";
import { buildModel, disposeModel } from "./model";
import "./wasm-kernels";

export interface Throughput {
  examplesPerSecond: number;
  /** Timed training steps, after one untimed warm-up step. */
  steps: number;
  /** The warm-up step: shader compilation, wasm instantiation, first allocations. */
  warmupMs: number;
}

/**
 * A batch shaped as the plan's model takes it, [n, ...inputShape]: pixels in [0, 1] for an image plan,
 * values in [-1, 1] for features; alternating labels. Deterministic, so every backend trains on the same.
 */
function syntheticBatch(plan: Plan, n: number): { x: tf.Tensor; y: tf.Tensor } {
  const xs = new Float32Array(n * inputWidth(plan));
  const image = plan.image !== undefined;
  for (let i = 0; i < xs.length; i++) {
    const v = ((i * 7919) % 17) / 16;
    xs[i] = image ? v : 2 * v - 1;
  }
  const ys = Float32Array.from({ length: n }, (_, i) => i % 2);
  return { x: tf.tensor(xs, [n, ...inputShape(plan)]), y: tf.tensor2d(ys, [n, 1]) };
}

/**
 * Examples per second of real training steps (trainOnBatch) of the plan's own model, CNN or MLP, at the
 * plan's batch size on the active backend: at least `minSteps` timed steps, then more until `budgetMs` has
 * passed (at most `maxSteps`). A step slower than the budget ends it after `minSteps`.
 */
export async function measureTraining(
  plan: Plan,
  options: { budgetMs: number; minSteps: number; maxSteps: number; batchSize?: number },
): Promise<Throughput> {
  const n = options.batchSize ?? plan.training.batchSize;
  const model = await buildModel(plan);
  const { x, y } = syntheticBatch(plan, n);
  try {
    let start = performance.now();
    await model.trainOnBatch(x, y);
    const warmupMs = performance.now() - start;
    let steps = 0;
    start = performance.now();
    while (
      steps < options.minSteps ||
      (steps < options.maxSteps && performance.now() - start < options.budgetMs)
    ) {
      await model.trainOnBatch(x, y);
      steps++;
    }
    return { examplesPerSecond: (steps * n * 1000) / (performance.now() - start), steps, warmupMs };
  } finally {
    tf.dispose([x, y]);
    disposeModel(model);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/**
 * Training throughput of the plan's model on one backend, for benchmarks (Node, or a worker in the browser):
 * `repeats` runs of `steps` timed steps each, and their median. The backend must be usable: in the browser
 * import ./backends first (it points tfjs at the app's .wasm files); in Node call setWasmPaths.
 */
export async function benchTrain(
  plan: Plan,
  backend: string,
  options: { steps?: number; repeats?: number; batchSize?: number } = {},
): Promise<{ backend: string; examplesPerSecond: number; runs: number[] }> {
  if (!(await tf.setBackend(backend))) throw new Error(`The ${backend} backend is not available here.`);
  await tf.ready();
  const steps = options.steps ?? 10;
  const runs: number[] = [];
  for (let r = 0; r < (options.repeats ?? 5); r++) {
    const run = await measureTraining(plan, {
      budgetMs: 0,
      minSteps: steps,
      maxSteps: steps,
      batchSize: options.batchSize,
    });
    runs.push(run.examplesPerSecond);
  }
  return { backend, examplesPerSecond: median(runs), runs };
}
