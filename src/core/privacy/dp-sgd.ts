import { InputError } from "../errors";
import { ADAM_BETA1, ADAM_BETA2 } from "../optim";
import { DEFAULT_MOMENTUM, dpSgdPrivacy, type Plan, privacyUnit } from "../plan";
import { CryptoRandom } from "../random";
import { discreteGaussianTable, sampleDiscreteGaussian } from "./cdt";
import { scaledVariance } from "./discrete-gaussian";
import { type DpSgdNoise, dpSgdGrid } from "./grid";
import { divergedError } from "./mechanism";

/**
 * DP-SGD's noise (Abadi et al. 2016, Alg. 1, with Poisson sampling as Mironov, Talwar, Zhang 2019 account
 * it): every step, each unit's gradient (a patient's, summed over their examples) is clipped, the clipped
 * gradients are summed, and discrete Gaussian noise of std sigma = z * C is added to the sum. The adjacency
 * is add/remove-one unit: the sum moves by at most C, so z is the noise over the L2 sensitivity. Under
 * replace-one the sum can move by 2C (one unit out, another in), so the same noise gives the guarantee of
 * z / 2 (Dwork & Roth 2014, Def. 3.8 with Delta_2 = 2C).
 */
export { type DpSgdNoise, dpSgdGrid };

/**
 * Rounds the clipped sum to the grid (in float64), adds discrete Gaussian noise of std sigma = z * C on the
 * grid (the exact table sampler of ./cdt.ts, never a float Gaussian: Mironov 2012), and returns a fresh
 * Float32Array. The caller clipped every unit to dpSgdGrid's effectiveClip; a float64 sum (a step's
 * microbatches added up) is rounded as it is, with no float32 rounding before the grid.
 */
export function noiseClippedSum(
  sum: Float32Array | Float64Array,
  p: DpSgdNoise,
  rng: CryptoRandom = new CryptoRandom(),
): { noised: Float32Array; grid: number; sigma: number } {
  const bad = sum.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw divergedError(`coordinate ${bad} of a step's clipped gradient sum`, sum[bad] as number);
  const { grid, gridExponent, sigma } = dpSgdGrid(p, sum.length);
  const { num, den } = scaledVariance(sigma, gridExponent);
  const noise = new Int32Array(sum.length);
  sampleDiscreteGaussian(discreteGaussianTable(num, den), rng, noise);
  const noised = new Float32Array(sum.length);
  // x / grid and tick * grid are exact in float64 (grid is a power of two).
  for (let i = 0; i < sum.length; i++)
    noised[i] = (Math.round((sum[i] as number) / grid) + (noise[i] as number)) * grid;
  return { noised, grid, sigma };
}

const UNIT_WORDS = { patient: "patients", row: "rows", image: "images" } as const;

/**
 * The site's schedule: q (the plan's samplingRate, or B/N for expectedBatchSize B and N training units
 * here), the expected batch q N (what each step's noised sum is divided by, never the realised size) and the
 * steps per round. Throws InputError naming the field when the expected batch is below 1 or above N.
 */
export function dpSgdSchedule(
  plan: Plan,
  units: number,
): { samplingRate: number; expectedBatch: number; steps: number } {
  const { stepsPerRound: steps, samplingRate: rate, expectedBatchSize } = dpSgdPrivacy(plan);
  const unit = UNIT_WORDS[privacyUnit(plan)];
  if (!(Number.isSafeInteger(units) && units >= 1))
    throw new InputError(
      `This site has no training ${unit} (${units}): import data before joining training.`,
    );
  if (expectedBatchSize !== undefined) {
    if (expectedBatchSize > units)
      throw new InputError(
        `The plan's privacy.expectedBatchSize is ${expectedBatchSize}, more than the ${units} training ${unit} ` +
          "at this site: every step would need more than all of them. This site cannot take part in this plan; " +
          "ask the federation for a smaller expectedBatchSize, or import more data.",
      );
    return { samplingRate: expectedBatchSize / units, expectedBatch: expectedBatchSize, steps };
  }
  const q = rate as number;
  const expectedBatch = q * units;
  if (expectedBatch < 1)
    throw new InputError(
      `The plan's privacy.samplingRate ${q} gives an expected batch of ${expectedBatch.toPrecision(3)} of the ` +
        `${units} training ${unit} at this site, below 1: steps would be mostly noise. This site cannot take ` +
        "part in this plan; ask the federation for a larger samplingRate, or import more data.",
    );
  return { samplingRate: q, expectedBatch, steps };
}

/**
 * Sampled units per step, in expected batches: Binomial(N, q) with mean mu = qN >= 1 exceeds 22 mu with
 * probability at most (e^21 / 22^22)^mu <= e^-47 (Chernoff, P(X >= (1+d) mu) <= (e^d / (1+d)^(1+d))^mu,
 * Mitzenmacher & Upfal 2005, Thm 4.4; the base is below 1, so mu >= 1 is the worst case). A union over
 * at most 10^5 steps per round leaves at most 2^-50.
 */
const SAMPLED_BATCHES_BOUND = 22;

/**
 * Adam's per-coordinate step |m_hat / (sqrt(v_hat) + eps)| at step t (Kingma & Ba 2015, Alg. 1). With
 * a_i = (1 - b1) b1^(t-i) and c_i = (1 - b2) b2^(t-i), Cauchy-Schwarz gives
 *   |m_t| = |sum a_i g_i| <= sqrt(sum a_i^2 / c_i) sqrt(sum c_i g_i^2) = sqrt(sum a_i^2 / c_i) sqrt(v_t),
 * and sum a_i^2 / c_i = (1 - b1)^2 / (1 - b2) (1 - r^t) / (1 - r) with r = b1^2 / b2 < 1, so
 *   |m_hat| / sqrt(v_hat) <= (1 - b1) / (1 - b1^t) sqrt((1 - b2^t) / (1 - b2)) sqrt((1 - r^t) / (1 - r)),
 * which is 1 at t = 1, at most 2.3 min(sqrt(t), 1 / sqrt(1 - b2)) (dropping (1 - b1) / (1 - b1^t) <= 1), and
 * tends to 7.3 as t grows for tf.train.adam's defaults.
 * eps > 0 only makes the step smaller; a coordinate with v = 0 had only zero gradients, so m = 0 too.
 */
function adamStepBound(t: number, b1: number, b2: number): number {
  const r = (b1 * b1) / b2;
  return ((1 - b1) / (1 - b1 ** t)) * Math.sqrt((1 - b2 ** t) / (1 - b2)) * Math.sqrt((1 - r ** t) / (1 - r));
}

/**
 * A bound on the L2 norm of an honest DP-SGD round delta, failing with probability at most 2^-40, for the
 * coordinator to refuse updates that were never clipped and noised. Per step the noised gradient is
 * (round(S) + noise) / (q N) with q N >= 1 (dpSgdSchedule enforces it): ||round(S)|| <= C m + C/128 for m
 * sampled units, m / (q N) <= min(22, 1/q) (SAMPLED_BATCHES_BOUND; m <= N always), and the noise's norm is at
 * most sigma (2 sqrt(d) + 60) but with probability e^-800 (./mechanism.ts maxReleasedNorm's argument). With
 * G that gradient bound and T steps: SGD moves at most lr T G, heavy-ball momentum lr T G / (1 - mu)
 * (||v_t|| <= G / (1 - mu)); Adam does not depend on G: lr sqrt(d) sum_t adamStepBound(t).
 */
export function maxDpSgdDeltaNorm(plan: Plan, numWeights: number): number {
  const privacy = dpSgdPrivacy(plan);
  const { clipNorm: C, stepsPerRound: steps, samplingRate } = privacy;
  const { sigma } = dpSgdGrid(privacy, numWeights);
  const root = Math.sqrt(numWeights);
  const { optimizer, learningRate: lr } = plan.training;
  const slack = 1 + 1e-6;
  if (optimizer === "adam") {
    let sum = 0;
    for (let t = 1; t <= steps; t++) sum += adamStepBound(t, ADAM_BETA1, ADAM_BETA2);
    return slack * lr * root * sum;
  }
  const batches =
    samplingRate === undefined ? SAMPLED_BATCHES_BOUND : Math.min(SAMPLED_BATCHES_BOUND, 1 / samplingRate);
  const gradient = C * batches + C / 128 + sigma * (2 * root + 60);
  const mu = optimizer === "momentum" ? (plan.training.momentum ?? DEFAULT_MOMENTUM) : 0;
  return (slack * lr * steps * gradient) / (1 - mu);
}
