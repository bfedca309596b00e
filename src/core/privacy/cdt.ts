import type { CryptoRandom } from "../random";

/**
 * A cumulative distribution table (CDT) sampler for the discrete Gaussian N_Z(0, s^2), with s^2 = num/den
 * an exact rational (Canonne, Kamath, Steinke 2020 define the distribution; the table method is the one of
 * lattice cryptography, e.g. Peikert 2010 and Dwarakanath & Galbraith 2014).
 *
 * Why a table and not the exact sampler of ./discrete-gaussian.ts: that one costs BigInt work per draw and
 * makes about 10^5 samples/s; a model update needs one draw per weight, and the product needs 10^6/s and
 * more. The table is built once per plan, with exact integer arithmetic only (no float anywhere between
 * the random words and the sample), and its statistical distance from N_Z(0, s^2) is at most 2^-62 per
 * sample, proven below and recomputed for each table as `distanceBound`:
 *
 * 1. Weights w_k = exp(-k^2 / (2 s^2)) in fixed point with FRACTION_BITS = 192 bits, by the recurrences
 *    w_{k+1} = w_k * b_k, b_{k+1} = b_k * a^2 from a = exp(-1/(2 s^2)) (a Taylor series on rationals).
 *    a is computed a few units of 2^-192 low, and each product truncates by less than one unit with every
 *    factor at most 1, so w_k = a^(k^2) is low by less than about 6 k^2 units: under 2^-146 for k < 2^20,
 *    which `WEIGHT_ERROR_UNITS` accounts for.
 * 2. The table stops at K, the first k where the tail beyond it is at most 2^-64 of the mass: with
 *    x = (2K + 3) / (2 s^2), sum_{k > K} w_k <= w_{K+1} / (1 - e^-x) <= w_{K+1} (1 + x) / x, and the total
 *    mass is at least w_0 = 1. Truncating and renormalising moves the distribution by exactly the tail
 *    mass (2 tails, both counted).
 * 3. The cumulative table T_k = floor(2^96 P(|X| <= k)) of the truncated |X|: sampling U uniform in
 *    [0, 2^96) and returning the least k with U < T_k gives each k a probability within 2^-96 of its
 *    target, so the distance is at most (K + 1) 2^-96 (< 2^-75 for K < 2^20); the weights' own errors
 *    (step 1) move it by at most 2 (K + 1) 2^-146 < 2^-120.
 * 4. The sign is a separate fair bit for k != 0, which is exact.
 * Sum: below 2^-64 + 2^-75 + 2^-120 < 2^-62, well inside the 2^-60 that issue 3 asks for.
 */
export interface DiscreteGaussianTable {
  /** s^2 = num / den, the variance parameter of N_Z(0, s^2). */
  readonly num: bigint;
  readonly den: bigint;
  /** Largest |X| the table can return. */
  readonly maxMagnitude: number;
  /** Upper bound on the statistical distance per sample from the exact N_Z(0, s^2). */
  readonly distanceBound: number;
  /** T_k split in three 32-bit words, high to low, for k = 0..K-1 (T_K = 2^96 is implicit). */
  readonly hi: Uint32Array;
  readonly mid: Uint32Array;
  readonly lo: Uint32Array;
}

const FRACTION_BITS = 192n;
const ONE = 1n << FRACTION_BITS;
const TABLE_BITS = 96n;
const TAIL_BITS = 64n;
const MAX_ENTRIES = 1 << 20;
/** Units of 2^-192 by which a weight may be low after the recurrences, for k < 2^20 (step 1 above). */
const WEIGHT_ERROR_UNITS = 1n << 46n;

/** exp(-p/q) for 0 <= p/q <= 1/2 in fixed point, truncated below by less than 2^-190. */
function expNegFixed(p: bigint, q: bigint): bigint {
  // Alternating series with terms decreasing in size: the truncation error is below the first omitted term.
  const guard = 16n;
  const scale = ONE << guard;
  let term = scale;
  let sum = scale;
  for (let n = 1n; term > 0n; n++) {
    term = (term * p) / (q * n);
    sum += n % 2n === 1n ? -term : term;
  }
  return (sum >> guard) - 2n;
}

/**
 * Builds the table for N_Z(0, num/den), num/den >= 1 (the mechanism uses s = sigma/grid in [2^10, 2^11)).
 * Costs a few BigInt products per entry: about 10 s entries, built once per plan and cached.
 */
export function buildDiscreteGaussianTable(num: bigint, den: bigint): DiscreteGaussianTable {
  if (num <= 0n || den <= 0n || num < den) {
    throw new RangeError("The discrete Gaussian table needs a variance s^2 = num/den of at least 1.");
  }
  const a = expNegFixed(den, 2n * num); // exp(-1/(2 s^2))
  const a2 = (a * a) >> FRACTION_BITS;
  const weights: bigint[] = [];
  let w = ONE; // w_0
  let b = a; // b_0 = a^1
  for (let k = 0; ; k++) {
    weights.push(w);
    const next = (w * b) >> FRACTION_BITS; // w_{k+1}
    // Tail beyond k, with w_{k+1} rounded up by its error bound: 2 (w + err)(2 num + (2k+3) den) <= 2^-64 (2k+3) den
    const x = BigInt(2 * k + 3);
    const tail = 2n * (next + WEIGHT_ERROR_UNITS) * (2n * num + x * den);
    if (tail << TAIL_BITS <= x * den * ONE) break;
    if (weights.length >= MAX_ENTRIES) {
      throw new RangeError(
        "The discrete Gaussian table would be too large; the noise scale is out of range.",
      );
    }
    w = next;
    b = (b * a2) >> FRACTION_BITS;
  }
  const K = weights.length - 1;
  // Mass of |X| = k: w_0 for k = 0, 2 w_k otherwise.
  let total = 0n;
  for (let k = 0; k <= K; k++) total += k === 0 ? (weights[k] as bigint) : 2n * (weights[k] as bigint);
  const hi = new Uint32Array(K);
  const mid = new Uint32Array(K);
  const lo = new Uint32Array(K);
  let cumulative = 0n;
  const mask = 0xffffffffn;
  for (let k = 0; k < K; k++) {
    cumulative += k === 0 ? (weights[k] as bigint) : 2n * (weights[k] as bigint);
    const t = (cumulative << TABLE_BITS) / total;
    hi[k] = Number(t >> 64n);
    mid[k] = Number((t >> 32n) & mask);
    lo[k] = Number(t & mask);
  }
  const distanceBound = 2 ** -64 + (K + 1) * 2 ** -96 + 2 * (K + 1) * 2 ** -146;
  return { num, den, maxMagnitude: K, distanceBound, hi, mid, lo };
}

/** Compares U = (u0, u1, u2) with T_k: true when U < T_k. Only reached when the high words tie. */
function below(table: DiscreteGaussianTable, k: number, u1: number, u2: number): boolean {
  const m = table.mid[k] as number;
  if (u1 !== m) return u1 < m;
  return u2 < (table.lo[k] as number);
}

const guides = new WeakMap<DiscreteGaussianTable, Uint32Array>();

/**
 * A guide to the table by the top 16 bits of a high word: guide[j] is the least k with hi[k] >= j * 2^16
 * (hi.length if none), for j = 0..2^16. hi is non-decreasing, so the least k with hi[k] >= u0 lies in
 * [guide[u0 >>> 16], guide[(u0 >>> 16) + 1]]: the search below gives the same k for the same random
 * words as a search of the whole table, in a range of a few entries instead of log2 K steps.
 */
function guideOf(table: DiscreteGaussianTable): Uint32Array {
  let guide = guides.get(table);
  if (guide) return guide;
  const { hi } = table;
  guide = new Uint32Array(2 ** 16 + 1);
  let k = 0;
  for (let j = 0; j <= 2 ** 16; j++) {
    const threshold = j * 2 ** 16;
    while (k < hi.length && (hi[k] as number) < threshold) k++;
    guide[j] = k;
  }
  guides.set(table, guide);
  return guide;
}

/** The least k with hi[k] >= u0 (hi.length if none), searched within the guide's bracket. */
export function firstAtLeast(
  table: DiscreteGaussianTable,
  u0: number,
  guide: Uint32Array = guideOf(table),
): number {
  const { hi } = table;
  let lo = guide[u0 >>> 16] as number;
  let high = guide[(u0 >>> 16) + 1] as number;
  while (lo < high) {
    const m = (lo + high) >>> 1;
    if ((hi[m] as number) < u0) lo = m + 1;
    else high = m;
  }
  return lo;
}

/** One draw of |X|: the least k with U < T_k, U a uniform 96-bit integer (low words drawn only on a tie). */
function sampleMagnitude(table: DiscreteGaussianTable, guide: Uint32Array, rng: CryptoRandom): number {
  const { hi } = table;
  const u0 = rng.uint32();
  const lo = firstAtLeast(table, u0, guide);
  if (lo === hi.length || (hi[lo] as number) > u0) return lo;
  // hi[lo] === u0: every k with the same high word decides on the lower words.
  const u1 = rng.uint32();
  const u2 = rng.uint32();
  let k = lo;
  while (k < hi.length && hi[k] === u0 && !below(table, k, u1, u2)) k++;
  return k;
}

/** Fills `out` with independent draws from the table's N_Z(0, s^2). */
export function sampleDiscreteGaussian(
  table: DiscreteGaussianTable,
  rng: CryptoRandom,
  out: Int32Array,
): void {
  const guide = guideOf(table);
  let signs = 0;
  let left = 0;
  for (let i = 0; i < out.length; i++) {
    const k = sampleMagnitude(table, guide, rng);
    if (k === 0) {
      out[i] = 0;
      continue;
    }
    if (left === 0) {
      signs = rng.uint32();
      left = 32;
    }
    out[i] = signs & 1 ? -k : k;
    signs >>>= 1;
    left--;
  }
}

const cache = new Map<string, DiscreteGaussianTable>();

/** The table for N_Z(0, num/den), built on first use; a plan uses one scale for all its rounds. */
export function discreteGaussianTable(num: bigint, den: bigint): DiscreteGaussianTable {
  const key = `${num}/${den}`;
  let table = cache.get(key);
  if (!table) {
    table = buildDiscreteGaussianTable(num, den);
    if (cache.size >= 4) cache.clear();
    cache.set(key, table);
  }
  return table;
}
