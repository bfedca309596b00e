import { toDyadic } from "./discrete-gaussian";
import { GRID_BITS_BELOW_SIGMA } from "./mechanism";

/**
 * DP-SGD's per-step noise grid, apart from ./dp-sgd.ts so that the plan's validation (../plan.ts) can refuse
 * a plan whose model the noise table cannot serve without an import cycle.
 */
export interface DpSgdNoise {
  clipNorm: number;
  noiseMultiplier: number;
}

/** Most s = sigma/grid the noise table takes: its K ~ 9.4 s entries stay below cdt.ts's 2^20. */
const MAX_GRID_BITS_BELOW_SIGMA = 16;

/** The rounding margin g sqrt(d) may take at most C / 4 of the clip norm (else the plan is refused). */
const MAX_CLIP_SHARE_FOR_ROUNDING = 4;

/** floor(log2 x) of a finite positive double, read off its bits (Math.log2 rounds up just below 2^k). */
function floorLog2(x: number): number {
  const { mantissa, exponent } = toDyadic(x);
  return exponent + mantissa.toString(2).length - 1;
}

/**
 * The per-step noise grid g: the largest power of two with sigma/g >= 2^10 (as ./mechanism.ts) and
 * g sqrt(d) <= C/64. Rounding the sum to the grid moves it by at most g sqrt(d)/2, so each unit is clipped
 * to effectiveClip = C - g sqrt(d): two neighbouring sums then differ by at most C after rounding, an
 * integer vector of norm <= C/g in grid units, and the noise is N_Z(0, (sigma/g)^2) per coordinate.
 * Where that grid would need a noise table over 2^16 sigma/g (a large model at large z), the grid is the
 * finest the table serves instead, as long as g sqrt(d) <= C/4: units are then clipped a little tighter
 * (to at least 3C/4), which costs some signal and no privacy. Beyond that it throws RangeError.
 */
export function dpSgdGrid(
  p: DpSgdNoise,
  numWeights: number,
): { grid: number; gridExponent: number; sigma: number; effectiveClip: number } {
  const { clipNorm, noiseMultiplier } = p;
  if (!(Number.isFinite(clipNorm) && clipNorm > 0 && Number.isFinite(noiseMultiplier) && noiseMultiplier > 0))
    throw new RangeError(
      `privacy.clipNorm (${clipNorm}) and privacy.noiseMultiplier (${noiseMultiplier}) must be finite numbers above 0.`,
    );
  if (!(Number.isSafeInteger(numWeights) && numWeights >= 1))
    throw new RangeError(`The model must have at least one weight, got ${numWeights}.`);
  const sigma = noiseMultiplier * clipNorm;
  const root = Math.sqrt(numWeights);
  let gridExponent = Math.min(floorLog2(sigma) - GRID_BITS_BELOW_SIGMA, floorLog2(clipNorm / (64 * root)));
  // The division and square root round; step down until the condition holds for the doubles themselves.
  while (2 ** gridExponent * root > clipNorm / 64) gridExponent--;
  // The finest grid the noise table serves: sigma/g below 2^16.
  gridExponent = Math.max(gridExponent, floorLog2(sigma) - MAX_GRID_BITS_BELOW_SIGMA + 1);
  const grid = 2 ** gridExponent;
  if (grid * root > clipNorm / MAX_CLIP_SHARE_FOR_ROUNDING)
    throw new RangeError(
      `A model of ${numWeights} weights at privacy.noiseMultiplier ${noiseMultiplier} is too large for ` +
        `DP-SGD's noise grid: the finest grid the noise table allows (2^${MAX_GRID_BITS_BELOW_SIGMA} steps ` +
        `per noise std) would round each step's sum by up to ${((100 * grid * root) / clipNorm).toFixed(0)}% ` +
        `of privacy.clipNorm, more than ${100 / MAX_CLIP_SHARE_FOR_ROUNDING}%; lower privacy.noiseMultiplier ` +
        "or use a model with fewer weights.",
    );
  return { grid, gridExponent, sigma, effectiveClip: clipNorm - grid * root };
}
