import { InputError } from "../errors";
import { CryptoRandom } from "../random";
import { l2Norm } from "../vector";
import { discreteGaussianTable, sampleDiscreteGaussian } from "./cdt";
import { clipToNorm } from "./clip";
import { scaledVariance, toDyadic } from "./discrete-gaussian";

/**
 * Training went non-finite: releasing the value would tell, without noise, that training diverged on this
 * site's data, so nothing is sent. `what` names the value, e.g. "weight 12 of the update".
 */
export function divergedError(what: string, value: number): InputError {
  return new InputError(
    `Local training diverged: ${what} is ${value}. Nothing was sent; ask the federation to lower the plan's learning rate.`,
  );
}

export interface PrivacyParams {
  clipNorm: number;
  noiseMultiplier: number;
  delta: number;
}

/**
 * Noise std for one site's upload. The guarantee is patient-level for the site's own upload: two datasets
 * of one site that differ in one patient (replace-one) can give clipped deltas anywhere in the ball of
 * radius C, so the L2 sensitivity is 2C (Dwork & Roth 2014, Def. 3.8 and Thm A.1 with Delta_2 = 2C), and
 * the Gaussian mechanism uses sigma = z * 2C for the plan's noise multiplier z.
 */
export function noiseStd(p: PrivacyParams): number {
  return p.noiseMultiplier * 2 * p.clipNorm;
}

/** Bits of resolution below sigma: the grid is the power of two g with sigma/g in [2^10, 2^11). */
export const GRID_BITS_BELOW_SIGMA = 10;

export interface PrivatizedDelta {
  /** What leaves the site. */
  delta: Float32Array;
  /** Stays at the site (the ledger), never sent: it depends on the data beyond the clipped delta. */
  preClipNorm: number;
  postClipNorm: number;
  sigma: number;
  grid: number;
  clipNorm: number;
}

/**
 * Clip, round to a power-of-two grid, add exact discrete Gaussian noise on that grid, scale back.
 * Rounding each coordinate moves the vector by at most g*sqrt(n)/2, so the clip uses C - g*sqrt(n)/2 and the
 * rounded vector still lies in the C-ball; the noise is N_Z(0, (sigma/g)^2) times g (Canonne, Kamath,
 * Steinke 2020), never a float Gaussian (Mironov 2012), drawn from a table built with exact integer
 * arithmetic whose distance from N_Z is below 2^-62 per weight (./cdt.ts says why a table and proves it).
 */
export function privatizeDelta(
  delta: Float32Array,
  params: PrivacyParams,
  rng: CryptoRandom = new CryptoRandom(),
): PrivatizedDelta {
  const bad = delta.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw divergedError(`weight ${bad} of the update`, delta[bad] as number);
  const sigma = noiseStd(params);
  if (sigma === 0) {
    const { clipped, norm } = clipToNorm(delta, params.clipNorm);
    const out = Float32Array.from(clipped);
    // float32 rounding can push the norm a hair above C; shrink by one float32 ulp until it is inside.
    while (l2Norm(out) > params.clipNorm)
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) * (1 - 2 ** -23);
    return {
      delta: out,
      preClipNorm: norm,
      postClipNorm: l2Norm(out),
      sigma: 0,
      grid: 0,
      clipNorm: params.clipNorm,
    };
  }
  // floor(log2(sigma)) read exactly off the double's bits (Math.log2 rounds up just below a power of two).
  const { mantissa, exponent } = toDyadic(sigma);
  const gridExponent = exponent + mantissa.toString(2).length - 1 - GRID_BITS_BELOW_SIGMA;
  const grid = 2 ** gridExponent;
  const roundingBound = (grid * Math.sqrt(delta.length)) / 2;
  const innerClip = params.clipNorm - roundingBound;
  if (!(innerClip > 0)) {
    throw new RangeError(
      `The noise grid (${grid}) is too coarse for ${delta.length} weights at clipNorm ${params.clipNorm}; ` +
        "lower the noise multiplier or raise clipNorm in the plan.",
    );
  }
  const { clipped, norm } = clipToNorm(delta, innerClip);
  const ticks = new Float64Array(delta.length);
  for (let i = 0; i < ticks.length; i++) ticks[i] = Math.round((clipped[i] as number) / grid);
  const postClipNorm = l2Norm(ticks) * grid;
  const { num, den } = scaledVariance(sigma, gridExponent);
  const noise = new Int32Array(delta.length);
  sampleDiscreteGaussian(discreteGaussianTable(num, den), rng, noise);
  const out = new Float32Array(delta.length);
  for (let i = 0; i < out.length; i++) out[i] = ((ticks[i] as number) + (noise[i] as number)) * grid;
  return { delta: out, preClipNorm: norm, postClipNorm, sigma, grid, clipNorm: params.clipNorm };
}

/**
 * The largest L2 norm an honest release can have (but with probability below e^-800): the clipped part is
 * at most C, and the noise is n independent discrete Gaussians, each sigma-subgaussian (Canonne, Kamath,
 * Steinke 2020, Cor. 9), whose norm exceeds sigma * (2 sqrt(n) + 60) with vanishing probability
 * (Laurent & Massart 2000, Lemma 1, with slack for the subgaussian constants). Not a tight bound: it
 * lets the coordinator refuse updates that were never clipped and noised, e.g. values near float32's max.
 */
export function maxReleasedNorm(p: PrivacyParams, n: number): number {
  return p.clipNorm * (1 + 1e-6) + noiseStd(p) * (2 * Math.sqrt(n) + 60);
}
