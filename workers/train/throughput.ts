import * as tf from "@tensorflow/tfjs";
import { createOptimizer } from "../../src/core/optim";
import { dpSgdPrivacy, inputShape, inputWidth, type Plan, siteUpdateTraining } from "../../src/core/plan";
import { dpSgdGrid, noiseClippedSum } from "../../src/core/privacy/dp-sgd";
import { CryptoRandom } from "../../src/core/random";
import { buildModel, disposeModel, readWeights } from "./model";
import { clippedGradientSum } from "./per-example";
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
  const { xs, ys } = syntheticValues(plan, n);
  return { x: tf.tensor(xs, [n, ...inputShape(plan)]), y: tf.tensor2d(ys, [n, 1]) };
}

/** syntheticBatch's values as flat arrays: n·inputWidth inputs and n labels. */
function syntheticValues(plan: Plan, n: number): { xs: Float32Array; ys: Float32Array } {
  const xs = new Float32Array(n * inputWidth(plan));
  const image = plan.image !== undefined;
  for (let i = 0; i < xs.length; i++) {
    const v = ((i * 7919) % 17) / 16;
    xs[i] = image ? v : 2 * v - 1;
  }
  return { xs, ys: Float32Array.from({ length: n }, (_, i) => i % 2) };
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
  const n = options.batchSize ?? siteUpdateTraining(plan).batchSize;
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

export interface DpSgdStepBench {
  backend: string;
  /** Median over the repeats. */
  examplesPerSecond: number;
  runs: number[];
  /** Mean milliseconds per timed step of each part of it, over all repeats: where the time goes. */
  phasesMs: { clippedSum: number; noise: number; optimizer: number };
  /** The first repeat's untimed warm-up step (kernels, shaders, the noise table on first use). */
  warmupMs: number;
}

/**
 * DP-SGD steps per second, in examples, of a dp-sgd plan's model on one backend, for benchmarks: each step
 * is what fitDpSgd (./dp-sgd.ts) does once it has its batch: the per-example norms, clipping and clipped
 * sum (clippedGradientSum, to dpSgdGrid's effectiveClip), the discrete Gaussian noise of std z·C on the
 * grid (noiseClippedSum, crypto randomness), the division by the batch and the plan's optimizer step on
 * Float32Array weights. The batch is fixed (`batchSize` examples, each its own unit, syntheticBatch's
 * values), so that it compares with measureTraining at the same size; Poisson sampling and shard reads are
 * left out. Every repeat starts from the model's initial weights with a fresh optimizer, as a round does.
 */
export async function benchDpSgdStep(
  plan: Plan,
  backend: string,
  options: { batchSize: number; steps?: number; repeats?: number },
): Promise<DpSgdStepBench> {
  if (!(await tf.setBackend(backend))) throw new Error(`The ${backend} backend is not available here.`);
  await tf.ready();
  const { clipNorm, noiseMultiplier } = dpSgdPrivacy(plan);
  const noise = { clipNorm, noiseMultiplier };
  const n = options.batchSize;
  const steps = options.steps ?? 10;
  const { xs, ys } = syntheticValues(plan, n);
  const model = await buildModel(plan);
  const initial = await readWeights(model);
  disposeModel(model);
  const { effectiveClip } = dpSgdGrid(noise, initial.length);
  const rng = new CryptoRandom();
  const phases = { clippedSum: 0, noise: 0, optimizer: 0 };
  const grad = new Float32Array(initial.length);
  const step = async (weights: Float32Array, optimizer: ReturnType<typeof createOptimizer>) => {
    const t0 = performance.now();
    const { sum } = await clippedGradientSum(plan, weights, xs, ys, undefined, effectiveClip);
    const t1 = performance.now();
    const { noised } = noiseClippedSum(sum, noise, rng);
    const t2 = performance.now();
    for (let i = 0; i < grad.length; i++) grad[i] = (noised[i] as number) / n;
    optimizer.step(weights, grad);
    const t3 = performance.now();
    return [t1 - t0, t2 - t1, t3 - t2] as const;
  };
  const runs: number[] = [];
  let warmupMs = 0;
  for (let r = 0; r < (options.repeats ?? 5); r++) {
    const weights = initial.slice();
    const optimizer = createOptimizer(plan.training, initial.length);
    const warm = performance.now();
    await step(weights, optimizer);
    if (r === 0) warmupMs = performance.now() - warm;
    const start = performance.now();
    for (let s = 0; s < steps; s++) {
      const [sum, noised, optimized] = await step(weights, optimizer);
      phases.clippedSum += sum;
      phases.noise += noised;
      phases.optimizer += optimized;
    }
    runs.push((steps * n * 1000) / (performance.now() - start));
  }
  const timed = steps * runs.length;
  return {
    backend,
    examplesPerSecond: median(runs),
    runs,
    phasesMs: {
      clippedSum: phases.clippedSum / timed,
      noise: phases.noise / timed,
      optimizer: phases.optimizer / timed,
    },
    warmupMs,
  };
}
