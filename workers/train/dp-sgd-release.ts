import type { Plan } from "../../src/core/plan";
import { divergedError } from "../../src/core/privacy/mechanism";
import { l2Norm, subtract } from "../../src/core/vector";
import { type DpSgdOptions, type DpSgdOutcome, fitDpSgd } from "./dp-sgd";
import type { FitOutcome, ShardSource, TrainProgress } from "./trainer";

/**
 * A DP-SGD round's release: the delta after the round's noised steps, with no further clip or noise
 * (post-processing of the noised steps, Dwork & Roth 2014, Prop. 2.1), and what the ledger records of it.
 * The stats stay at the site: they depend on the data beyond what the noise covers.
 */
export interface DpSgdRelease {
  mechanism: "dp-sgd";
  /** What leaves the site: local - global, float32. */
  delta: Float32Array;
  steps: number;
  samplingRate: number;
  /** N, the site's training units the sampling rate and epsilon were computed for. */
  units: number;
  noiseMultiplier: number;
  clipNorm: number;
  /** z * C, the std of the noise added to each step's clipped sum, and that noise's grid. */
  sigma: number;
  grid: number;
  /** The delta's L2 norm; pre- and post-clip alike (the delta is not clipped), for RoundRow and the ledger. */
  norm: number;
  preClipNorm: number;
  postClipNorm: number;
  /** Of the unit gradients sampled this round, the fraction whose norm was over the clip. */
  clippedFraction: number;
  /** Mean realised batch per step, in examples and in units (expected: q * N units). */
  meanBatchExamples: number;
  meanBatchUnits: number;
}

export interface DpSgdFit {
  numExamples: number;
  metrics: FitOutcome["metrics"];
  released: DpSgdRelease;
}

/** Trains the round (workers/train/dp-sgd.ts) and makes its release; a diverged delta is never released. */
export async function releaseDpSgd(
  plan: Plan,
  global: Float32Array,
  source: ShardSource,
  onProgress: (p: TrainProgress) => void,
  options: DpSgdOptions = {},
): Promise<DpSgdFit> {
  const out = await fitDpSgd(plan, global, source, onProgress, options);
  return { numExamples: out.numExamples, metrics: out.metrics, released: toRelease(out, global) };
}

export function toRelease(out: DpSgdOutcome, global: Float32Array): DpSgdRelease {
  const delta = subtract(out.weights, global);
  const bad = delta.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw divergedError(`weight ${bad} of the update`, delta[bad] as number);
  const norm = l2Norm(delta);
  return {
    mechanism: "dp-sgd",
    delta,
    steps: out.steps,
    samplingRate: out.samplingRate,
    units: out.units,
    noiseMultiplier: out.noiseMultiplier,
    clipNorm: out.clipNorm,
    sigma: out.sigma,
    grid: out.grid,
    norm,
    preClipNorm: norm,
    postClipNorm: norm,
    clippedFraction: out.stats.clippedFraction,
    meanBatchExamples: out.stats.meanBatchExamples,
    meanBatchUnits: out.stats.meanBatchUnits,
  };
}
