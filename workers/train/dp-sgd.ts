import { InputError } from "../../src/core/errors";
import { createOptimizer } from "../../src/core/optim";
import { dpSgdPrivacy, inputWidth, type Plan, paramCount } from "../../src/core/plan";
import { dpSgdGrid, dpSgdSchedule, noiseClippedSum } from "../../src/core/privacy/dp-sgd";
import { divergedError } from "../../src/core/privacy/mechanism";
import { poissonSample } from "../../src/core/privacy/poisson";
import { CryptoRandom } from "../../src/core/random";
import { clippedGradientSum } from "./per-example";
import type { EpochDone, FitResume, ShardSource, TrainProgress } from "./trainer";
import { DEFAULT_CACHE_BYTES, indexUnits, microbatches, ShardCache } from "./unit-sampler";

/** Examples per microbatch of whole units: bounds the per-example activations held by clippedGradientSum. */
export const MICROBATCH_EXAMPLES = 256;

/** What one step did, for tests and the bench (never sent anywhere). */
export interface DpSgdStepInfo {
  /** 1-based step of the round. */
  step: number;
  /** The local unit numbers sampled (sorted; see UnitIndex), and their examples in all. */
  units: Uint32Array;
  examples: number;
}

export interface DpSgdOptions {
  /** Continue after `resume.epoch` completed steps, from its weights, with a fresh optimizer. */
  resume?: FitResume;
  /** Called with (steps done, weights, loss) every ceil(steps / 10) steps and after the last; awaited. */
  onCheckpoint?: EpochDone;
  onStep?: (info: DpSgdStepInfo) => void;
  /** Sampling and noise; crypto.getRandomValues unless a test seeds it. */
  rng?: CryptoRandom;
  cacheBytes?: number;
  microbatchExamples?: number;
}

export interface DpSgdOutcome {
  weights: Float32Array;
  numExamples: number;
  /** N, the units sampling and accounting count. */
  units: number;
  steps: number;
  samplingRate: number;
  /** q * N, what every step's noised sum is divided by. */
  expectedBatch: number;
  noiseMultiplier: number;
  clipNorm: number;
  /** Each unit's gradient is clipped to this, a little below C, so the rounded sum stays within C of its neighbour's. */
  effectiveClip: number;
  /** z * C, the std of each step's noise, on the power-of-two grid `grid`. */
  sigma: number;
  grid: number;
  /** Over the steps this fit ran: units whose gradient norm exceeded the clip, and the realised batches. */
  stats: { stepsRun: number; clippedFraction: number; meanBatchExamples: number; meanBatchUnits: number };
  metrics: { loss: number; examplesPerSecond: number; seconds: number };
}

/**
 * One round of DP-SGD at a site (Abadi et al. 2016, Alg. 1, with Poisson sampling as in Mironov, Talwar,
 * Zhang 2019): every step includes each of the site's N units independently with probability q, clips each
 * sampled unit's gradient (the sum over its examples) to C, adds discrete Gaussian noise of std z*C to the
 * step's sum, divides by the expected batch q*N (never the realised size: that would leak it) and takes an
 * optimizer step. An empty sample still gets the noise and a step. The data are read shard by shard through
 * a bounded cache, never held whole.
 */
export async function fitDpSgd(
  plan: Plan,
  global: Float32Array,
  source: ShardSource,
  onProgress: (p: TrainProgress) => void,
  options: DpSgdOptions = {},
): Promise<DpSgdOutcome> {
  const privacy = dpSgdPrivacy(plan);
  const dim = inputWidth(plan);
  const numWeights = paramCount(plan);
  if (global.length !== numWeights) {
    throw new RangeError(
      `The global model has ${global.length} weights; the plan's model needs ${numWeights}.`,
    );
  }
  const cache = new ShardCache(source, dim, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
  const numExamples = await source.count();
  if (numExamples === 0)
    throw new InputError("There are no training examples: import data before joining training.");
  const index = await indexUnits(source, cache, source.units ? await source.units() : undefined);
  if (index.examples !== numExamples) {
    throw new InputError(
      `The imported data list ${numExamples} training examples but the stored shards hold ${index.examples}; import the file again.`,
    );
  }
  const { samplingRate, expectedBatch, steps } = dpSgdSchedule(plan, index.units);
  const noise = { clipNorm: privacy.clipNorm, noiseMultiplier: privacy.noiseMultiplier };
  const { grid, sigma, effectiveClip } = dpSgdGrid(noise, numWeights);
  const rng = options.rng ?? new CryptoRandom();
  const optimizer = createOptimizer(plan.training, numWeights);
  const maxExamples = options.microbatchExamples ?? MICROBATCH_EXAMPLES;
  const every = Math.ceil(steps / 10);
  const weights = Float32Array.from(options.resume?.weights ?? global);
  const sum = new Float64Array(numWeights);
  const grad = new Float32Array(numWeights);
  const start = performance.now();
  let seen = 0;
  let sampledUnits = 0;
  let clipped = 0;
  let stepsRun = 0;
  let lastLoss = options.resume?.loss ?? Number.NaN;
  for (let step = (options.resume?.epoch ?? 0) + 1; step <= steps; step++) {
    const sampled = poissonSample(index.units, samplingRate, rng);
    sum.fill(0);
    let examples = 0;
    let lossSum = 0;
    for await (const mb of microbatches(index, sampled, cache, dim, maxExamples)) {
      const out = await clippedGradientSum(plan, weights, mb.x, mb.y, mb.unitOf, effectiveClip);
      for (let i = 0; i < numWeights; i++) sum[i] = (sum[i] as number) + (out.sum[i] as number);
      for (const norm of out.norms) if (norm > effectiveClip) clipped++;
      lossSum += out.loss * mb.count;
      examples += mb.count;
    }
    const { noised } = noiseClippedSum(sum, noise, rng);
    for (let i = 0; i < numWeights; i++) grad[i] = (noised[i] as number) / expectedBatch;
    optimizer.step(weights, grad);
    const bad = weights.findIndex((w) => !Number.isFinite(w));
    if (bad >= 0)
      throw divergedError(`weight ${bad} of the update`, (weights[bad] as number) - (global[bad] as number));
    options.onStep?.({ step, units: sampled, examples });
    seen += examples;
    sampledUnits += sampled.length;
    stepsRun++;
    if (examples > 0) lastLoss = lossSum / examples;
    const seconds = (performance.now() - start) / 1000;
    onProgress({
      epoch: step,
      epochs: steps,
      batch: 1,
      batches: 1,
      step,
      steps,
      batchExamples: examples,
      loss: lastLoss,
      examplesPerSecond: seconds > 0 ? seen / seconds : 0,
      secondsLeft: (seconds / stepsRun) * (steps - step),
    });
    if (options.onCheckpoint && (step % every === 0 || step === steps))
      await options.onCheckpoint(step, weights.slice(), lastLoss);
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    weights,
    numExamples,
    units: index.units,
    steps,
    samplingRate,
    expectedBatch,
    noiseMultiplier: privacy.noiseMultiplier,
    clipNorm: privacy.clipNorm,
    effectiveClip,
    sigma,
    grid,
    stats: {
      stepsRun,
      clippedFraction: sampledUnits > 0 ? clipped / sampledUnits : 0,
      meanBatchExamples: stepsRun > 0 ? seen / stepsRun : 0,
      meanBatchUnits: stepsRun > 0 ? sampledUnits / stepsRun : 0,
    },
    metrics: { loss: lastLoss, examplesPerSecond: seen > 0 ? seen / seconds : 0, seconds },
  };
}
