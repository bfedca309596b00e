import { erf, erfcx, logErfc, logNormalCdf, normalCdf } from "./normal";

/**
 * Privacy accounting for the Gaussian mechanism, in two ways:
 *
 * - exactly, by Gaussian DP: a Gaussian release with noise multiplier z (noise std over L2 sensitivity) is
 *   (1/z)-GDP, releases compose to mu = sqrt(sum 1/z_t^2) (Dong, Roth, Su 2019, Cor. 3.3), and mu-GDP is
 *   exactly the family of (eps, delta(eps)) guarantees of Balle & Wang 2018, Thm. 8;
 * - by Rényi DP (Mironov 2017), which also covers Poisson subsampling (Mironov, Talwar, Zhang 2019), ported
 *   from dp_accounting's rdp_privacy_accountant (the successor of TensorFlow Privacy's rdp_accountant) so
 *   that its published test vectors hold here too.
 *
 * One file because the API is one unit that the rest of the code imports; the RDP half is most of it.
 */

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const SQRT_HALF_PI = Math.sqrt(Math.PI / 2);

// ---------------------------------------------------------------------------------------------------------
// Input checks: every exported function validates what it is given, as the API is an edge (CLI, plans).

function checkNoiseMultiplier(z: number, name = "noiseMultiplier"): void {
  if (!(Number.isFinite(z) && z > 0)) {
    throw new RangeError(
      `${name} must be a finite number above 0, got ${z}. It is the noise std divided by the L2 ` +
        "sensitivity; without noise there is no finite epsilon.",
    );
  }
}

function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) {
    throw new RangeError(
      `delta must lie strictly between 0 and 1, got ${delta}. Pick one well below 1/n for n records, e.g. 1e-5.`,
    );
  }
}

function checkSteps(steps: number): void {
  if (!(Number.isSafeInteger(steps) && steps >= 1)) {
    throw new RangeError(`steps must be a whole number of releases, 1 or more, got ${steps}.`);
  }
}

function checkSamplingRate(q: number): void {
  if (!(q >= 0 && q <= 1)) {
    throw new RangeError(`samplingRate must lie in [0, 1], got ${q}. It is each record's chance to be used.`);
  }
}

function checkOrders(orders: readonly number[]): void {
  const bad = orders.findIndex((a) => !(a >= 1));
  if (bad >= 0) {
    throw new RangeError(
      `RDP orders must be numbers >= 1 (Infinity allowed), got orders[${bad}] = ${orders[bad]}.`,
    );
  }
}

function checkMu(mu: number): void {
  if (!(mu >= 0)) throw new RangeError(`mu must be a number >= 0, got ${mu}.`);
}

// ---------------------------------------------------------------------------------------------------------
// Gaussian DP.

/** mu of Gaussian DP for the composition of Gaussian mechanisms with noise multipliers z_t (sensitivity-normalized): sqrt(sum 1/z_t^2). */
export function gaussianMu(noiseMultipliers: readonly number[]): number {
  // Neumaier's compensated sum: T equal terms then give sqrt(T)/z to an ulp or two, however large T is.
  let sum = 0;
  let carry = 0;
  noiseMultipliers.forEach((z, t) => {
    checkNoiseMultiplier(z, `noiseMultipliers[${t}]`);
    const term = 1 / (z * z);
    const next = sum + term;
    carry += Math.abs(sum) >= Math.abs(term) ? sum - next + term : term - next + sum;
    sum = next;
  });
  return Math.sqrt(sum + carry);
}

/** Mills ratio Φ(x)/φ(x) for x <= 0: sqrt(pi/2) erfcx(-x/sqrt 2), between 0 and sqrt(pi/2). */
function millsRatio(x: number): number {
  return SQRT_HALF_PI * erfcx(-x * Math.SQRT1_2);
}

/**
 * delta for a = -eps/mu + mu/2 >= 0 (so eps <= mu^2/2): Φ(a) - e^eps Φ(b) with b = a - mu < 0, written as
 * [Φ(a) - Φ(b)] - expm1(eps) Φ(b) so that small mu does not cancel two halves.
 */
function centralDelta(a: number, b: number, eps: number): number {
  const spread = 0.5 * (erf(a * Math.SQRT1_2) + erf(-b * Math.SQRT1_2));
  const extra = eps < 700 ? Math.expm1(eps) * normalCdf(b) : Math.exp(eps + logNormalCdf(b)) - normalCdf(b);
  return Math.max(0, spread - extra);
}

/**
 * log delta(eps) of mu-GDP. For a < 0 both terms are lower tails, and since e^eps φ(b) = φ(a) exactly,
 * delta = φ(a) (R(a) - R(b)) with the Mills ratio R: no e^eps to overflow and no two tiny Φ to subtract.
 * R(a) - R(b) still cancels when mu is tiny: eps comes out within 2e-13 relative for mu >= 1e-4 (checked
 * against mpmath), but only within 1e-11 at mu = 1e-6 (a noise multiplier of 1e6 sqrt(T)).
 */
function logGdpDelta(mu: number, eps: number): number {
  if (mu === 0 || eps === Number.POSITIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  if (mu === Number.POSITIVE_INFINITY) return 0;
  const a = -eps / mu + mu / 2;
  const b = a - mu;
  if (a >= 0) return Math.log(centralDelta(a, b, eps));
  const gap = millsRatio(a) - millsRatio(b);
  return gap > 0 ? -0.5 * a * a - LOG_SQRT_2PI + Math.log(gap) : Number.NEGATIVE_INFINITY;
}

/** delta(eps) of mu-GDP: Φ(-eps/mu + mu/2) - e^eps Φ(-eps/mu - mu/2) (Balle & Wang 2018, Thm 8; Dong, Roth, Su 2019, Cor 2.13). */
export function gdpDelta(mu: number, epsilon: number): number {
  checkMu(mu);
  if (!(epsilon >= 0)) throw new RangeError(`epsilon must be a number >= 0, got ${epsilon}.`);
  if (mu > 0 && mu < Number.POSITIVE_INFINITY) {
    const a = -epsilon / mu + mu / 2;
    if (a >= 0) return centralDelta(a, a - mu, epsilon);
  }
  return Math.exp(logGdpDelta(mu, epsilon));
}

/** smallest eps >= 0 with gdpDelta(mu, eps) <= delta; 0 when mu == 0. Solved to ~1e-12 relative. */
export function gdpEpsilon(mu: number, delta: number): number {
  checkMu(mu);
  checkDelta(delta);
  if (mu === 0) return 0;
  const logDelta = Math.log(delta);
  const meets = (eps: number) => logGdpDelta(mu, eps) <= logDelta;
  if (meets(0)) return 0;
  // At this eps, a <= -sqrt(2 ln(1/delta)), so delta(eps) <= Φ(a) <= exp(-a^2/2)/2 < delta.
  let hi = (mu * mu) / 2 + mu * Math.sqrt(2 * Math.log(1 / delta));
  if (!Number.isFinite(hi)) return Number.POSITIVE_INFINITY;
  let lo = 0;
  while (!meets(hi)) {
    lo = hi;
    hi *= 2;
  }
  // delta(eps) decreases, so bisection keeps hi meeting the target; 1e-14 relative takes about 50 steps.
  while (hi - lo > 1e-14 * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** exact epsilon after composing Gaussian releases with these noise multipliers (no subsampling). */
export function exactGaussianEpsilon(noiseMultipliers: readonly number[], delta: number): number {
  checkDelta(delta);
  return gdpEpsilon(gaussianMu(noiseMultipliers), delta);
}

// ---------------------------------------------------------------------------------------------------------
// Rényi DP of the Poisson-subsampled Gaussian (Mironov, Talwar, Zhang 2019, Sec. 3.3).

/** dp_accounting's default RDP orders: 1 + x/10 for x = 1..99, then 11..63, 128, 256, 512, 1024. */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

/**
 * Integer RDP orders only, for DP-SGD's discrete Gaussian noise (src/core/privacy/dp-sgd.ts). Why integers:
 * for P = N_Z(0, s^2)^d and Q = N_Z(mu, s^2)^d with an integer shift mu (neighbouring clipped sums, both
 * rounded to the noise grid, differ by a lattice vector), and an integer order a,
 *   E_P[(Q/P)^a] = sum_x P(x)^(1-a) Q(x)^a = exp(a(a-1)||mu||^2 / (2 s^2)),
 * exactly the continuous Gaussian's moment: the exponent is -[(x - a mu)^2 - a(a-1) mu^2] / (2 s^2), and
 * the lattice sum of exp(-(x - a mu)^2 / (2 s^2)) is the normaliser again because a mu is an integer
 * vector (Canonne, Kamath, Steinke 2020 study this distribution). Mironov, Talwar & Zhang 2019's bound for
 * the Poisson-subsampled Gaussian at an integer order, A_a = sum_i C(a, i) q^i (1-q)^(a-i) E_P[(Q/P)^i],
 * is built from these moments only, so it holds unchanged for the subsampled discrete Gaussian. At a
 * fractional order the moments differ, so none is used. 2..64 decide epsilon in practice; the large ones
 * matter for tiny sampling rates and strong noise.
 */
export const INTEGER_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 63 }, (_, i) => 2 + i),
  80,
  96,
  128,
  256,
  512,
  1024,
]);

/** log(e^x + e^y). */
function logAdd(x: number, y: number): number {
  const lo = Math.min(x, y);
  const hi = Math.max(x, y);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/**
 * log A_alpha for integer alpha, 0 < q < 1: A_alpha = sum_i C(alpha, i) q^i (1-q)^(alpha-i) e^((i^2-i)/(2 sigma^2))
 * (Mironov, Talwar, Zhang 2019, Sec. 3.3). log C(alpha, i) is built up term by term, so alpha = 1024 does
 * not overflow.
 */
function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  let logA = Number.NEGATIVE_INFINITY;
  let logCoef = 0;
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logCoef += Math.log((alpha - i + 1) / i);
    logA = logAdd(logA, logCoef + i * logQ + (alpha - i) * log1mq + (i * i - i) / twoVar);
  }
  return logA;
}

const MAX_STEPS_LOG_A_FRAC = 1000;

/**
 * log A_alpha for fractional alpha, 0 < q < 1: the integral split at z0 into two series (Mironov, Talwar,
 * Zhang 2019, Sec. 3.3), as dp_accounting's `_compute_log_a_frac`. Like dp_accounting (and unlike TF
 * Privacy and Opacus, which subtract the terms whose generalized binomial coefficient is negative), it adds
 * |C(alpha, i)| for every term: an upper bound on A_alpha, so a valid, slightly looser RDP (3% at order 1.5
 * for q = 0.01, z = 2.5; nothing at the orders that usually decide epsilon). Infinity (this order then
 * says nothing) if the series has not converged after 1000 terms.
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  const scale = Math.SQRT2 * sigma;
  const z0 = sigma * sigma * (log1mq - logQ) + 0.5; // sigma^2 ln(1/q - 1) + 1/2
  let logA0 = Number.NEGATIVE_INFINITY;
  let logA1 = Number.NEGATIVE_INFINITY;
  let last0 = Number.NEGATIVE_INFINITY;
  let last1 = Number.NEGATIVE_INFINITY;
  let logCoef = 0; // log |C(alpha, i)|
  for (let i = 0; i < MAX_STEPS_LOG_A_FRAC; i++) {
    if (i > 0) logCoef += Math.log(Math.abs((alpha - i + 1) / i));
    const j = alpha - i;
    const logS0 =
      logCoef + i * logQ + j * log1mq + (i * i - i) / twoVar - Math.LN2 + logErfc((i - z0) / scale);
    const logS1 =
      logCoef + j * logQ + i * log1mq + (j * j - j) / twoVar - Math.LN2 + logErfc((z0 - j) / scale);
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    // Stop once both series decrease and their terms no longer matter against the total.
    if (logS0 < last0 && logS1 < last1 && Math.max(logS0, logS1) < total - 30) return total;
    last0 = logS0;
    last1 = logS1;
  }
  return Number.POSITIVE_INFINITY;
}

/** RDP of one Poisson-subsampled Gaussian release at order alpha (dp_accounting's `compute_one_order`). */
function rdpOneStep(q: number, z: number, alpha: number): number {
  if (q === 0) return 0;
  if (alpha === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  // Mironov 2017, Prop. 7: the Gaussian mechanism is (alpha, alpha / (2 z^2))-RDP.
  if (q === 1) return alpha / (2 * z * z);
  // At order 1 the series gives log A / (alpha - 1) = 0/0; the KL divergence is not computed, so no claim.
  if (alpha === 1) return Number.POSITIVE_INFINITY;
  const logA = Number.isInteger(alpha) ? logAInt(q, z, alpha) : logAFrac(q, z, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` compositions of the Poisson-subsampled Gaussian (rate q, noise multiplier z) at each order; Infinity at order Infinity when q>0. */
export function rdpPoissonGaussian(q: number, z: number, steps: number, orders: readonly number[]): number[] {
  checkSamplingRate(q);
  checkNoiseMultiplier(z);
  checkSteps(steps);
  checkOrders(orders);
  // RDP composes by adding (Mironov 2017, Prop. 1).
  return orders.map((alpha) => steps * rdpOneStep(q, z, alpha));
}

/** epsilon from (alpha, r)-RDP at one order, as dp_accounting's `compute_epsilon` loop body. */
function epsilonAtOrder(alpha: number, r: number, delta: number): number {
  if (r < 0) return 0; // only rounding makes a divergence negative
  // delta <= sqrt(1 - exp(-KL)) and KL <= r: no epsilon needed at all.
  if (delta * delta + Math.expm1(-r) > 0) return 0;
  // The bound below tends to r as alpha grows: D_inf is pure DP.
  if (alpha === Number.POSITIVE_INFINITY) return r;
  // Balle et al. 2020, Thm. 21; Canonne, Kamath, Steinke 2020, Prop. 12. Unstable as alpha -> 1.
  if (alpha > 1.01) return r + Math.log1p(-1 / alpha) - Math.log(delta * alpha) / (alpha - 1);
  return Number.POSITIVE_INFINITY;
}

/** (eps, order) from RDP: eps = min_a [RDP(a) + ln((a-1)/a) - (ln delta + ln a)/(a-1)] (Balle et al. 2020; Canonne, Kamath, Steinke 2020), as dp_accounting's compute_epsilon (including its edge cases: order<=1.01 gives Infinity, eps clamped at 0, delta^2 + expm1(-r) >= 0 gives 0). */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
): { epsilon: number; order: number } {
  checkDelta(delta);
  checkOrders(orders);
  if (orders.length === 0 || orders.length !== rdp.length) {
    throw new RangeError(
      `orders and rdp must be non-empty and of equal length, got ${orders.length} orders and ${rdp.length} values.`,
    );
  }
  const badRdp = rdp.findIndex((r) => Number.isNaN(r));
  if (badRdp >= 0) throw new RangeError(`rdp[${badRdp}] is NaN; every RDP value must be a number.`);
  let best = 0;
  let bestEpsilon = Number.POSITIVE_INFINITY;
  orders.forEach((alpha, k) => {
    const eps = epsilonAtOrder(alpha, rdp[k] as number, delta);
    if (eps < bestEpsilon) [best, bestEpsilon] = [k, eps];
  });
  return { epsilon: Math.max(0, bestEpsilon), order: orders[best] as number };
}

/** Convenience: RDP epsilon for q, z, steps, delta (default orders). */
export function rdpEpsilon(p: {
  samplingRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
}): number {
  checkDelta(p.delta);
  const orders = p.orders ?? DEFAULT_RDP_ORDERS;
  const rdp = rdpPoissonGaussian(p.samplingRate, p.noiseMultiplier, p.steps, orders);
  return rdpToEpsilon(orders, rdp, p.delta).epsilon;
}

// ---------------------------------------------------------------------------------------------------------
// Calibration.

const SIGNIFICANT_DIGITS = 7;
const MAX_NOISE_MULTIPLIER = 2 ** 40;
const MIN_NOISE_MULTIPLIER = 2 ** -40;

/** Powers of ten that put `digits` significant digits of x before the decimal point. */
function decimalShift(x: number, digits: number): number {
  return digits - 1 - Math.floor(Math.log10(x));
}

/** m / 10^shift, exact to the nearest double for either sign of shift. */
function fromScaled(m: number, shift: number): number {
  return shift >= 0 ? m / 10 ** shift : m * 10 ** -shift;
}

/** x rounded up to `digits` significant decimal digits (rounding may land it one unit higher). */
function ceilSignificant(x: number, digits: number): number {
  const shift = decimalShift(x, digits);
  return fromScaled(Math.ceil(shift >= 0 ? x * 10 ** shift : x / 10 ** -shift), shift);
}

/** The next number up with `digits` significant decimal digits, for x that has them. */
function nextSignificant(x: number, digits: number): number {
  const shift = decimalShift(x, digits);
  return fromScaled(Math.round(shift >= 0 ? x * 10 ** shift : x / 10 ** -shift) + 1, shift);
}

/**
 * smallest z (to ~1e-6 relative, then rounded UP so it surely meets the target) meeting targetEpsilon: by RDP
 * when samplingRate < 1, else exact GDP. Given `orders`, always by RDP at those orders, q = 1 included (as
 * DP-SGD plans are accounted, at INTEGER_RDP_ORDERS).
 */
export function noiseMultiplierForEpsilon(p: {
  targetEpsilon: number;
  steps: number;
  delta: number;
  samplingRate?: number;
  orders?: readonly number[];
}): number {
  const { targetEpsilon, steps, delta, samplingRate = 1, orders } = p;
  if (!(Number.isFinite(targetEpsilon) && targetEpsilon > 0)) {
    throw new RangeError(`targetEpsilon must be a finite number above 0, got ${targetEpsilon}.`);
  }
  checkSteps(steps);
  checkDelta(delta);
  checkSamplingRate(samplingRate);
  if (samplingRate === 0) {
    throw new RangeError(
      "samplingRate is 0: nothing is released, so every noise multiplier meets any target.",
    );
  }
  if (orders !== undefined) checkOrders(orders);
  const epsilonAt = (z: number) =>
    samplingRate === 1 && orders === undefined
      ? gdpEpsilon(Math.sqrt(steps) / z, delta)
      : rdpEpsilon({ samplingRate, noiseMultiplier: z, steps, delta, ...(orders ? { orders } : {}) });
  const meets = (z: number) => epsilonAt(z) <= targetEpsilon;
  // epsilon falls as z grows, so bracket [lo, hi] with hi meeting the target and lo not, then bisect.
  let hi = 1;
  while (!meets(hi)) {
    hi *= 2;
    if (hi > MAX_NOISE_MULTIPLIER) {
      throw new RangeError(
        `No noise multiplier up to 2^40 reaches targetEpsilon = ${targetEpsilon}; raise the target or delta.`,
      );
    }
  }
  let lo = hi / 2;
  while (meets(lo)) {
    hi = lo;
    lo /= 2;
    if (lo < MIN_NOISE_MULTIPLIER) {
      throw new RangeError(`targetEpsilon = ${targetEpsilon} is so large that almost no noise meets it.`);
    }
  }
  while (hi / lo - 1 > 1e-8) {
    const mid = Math.sqrt(lo * hi);
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  let z = ceilSignificant(hi, SIGNIFICANT_DIGITS);
  while (!meets(z)) z = nextSignificant(z, SIGNIFICANT_DIGITS);
  return z;
}
