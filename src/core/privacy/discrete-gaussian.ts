import type { CryptoRandom } from "../random";

/**
 * Exact samplers from Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy"
 * (NeurIPS 2020), Algorithms 1-3. All arithmetic is on BigInt rationals, so the output follows the
 * discrete Gaussian exactly (no floating point anywhere between the random bytes and the integer),
 * which is what defeats the floating-point attacks of Mironov (CCS 2012) and Jin et al. (S&P 2022).
 */

/** Bernoulli(exp(-num/den)) for num/den >= 0. CKS 2020, Algorithm 1 (with the reduction for gamma > 1). */
export function bernoulliExpNeg(rng: CryptoRandom, num: bigint, den: bigint): boolean {
  if (num < 0n || den <= 0n) throw new RangeError("bernoulliExpNeg needs num >= 0 and den > 0");
  if (num <= den) {
    let k = 1n;
    while (rng.bernoulli(num, den * k)) k++;
    return k % 2n === 1n;
  }
  const whole = num / den;
  for (let i = 0n; i < whole; i++) {
    if (!bernoulliExpNeg(rng, 1n, 1n)) return false;
  }
  return bernoulliExpNeg(rng, num - whole * den, den);
}

/** Discrete Laplace with scale t (P(x) proportional to exp(-|x|/t)), t a positive integer. CKS 2020, Alg. 2. */
export function discreteLaplace(rng: CryptoRandom, t: bigint): bigint {
  for (;;) {
    const u = rng.uniformBigInt(t);
    if (!bernoulliExpNeg(rng, u, t)) continue;
    let v = 0n;
    while (bernoulliExpNeg(rng, 1n, 1n)) v++;
    const x = u + t * v;
    const negative = rng.bernoulli(1n, 2n);
    if (negative && x === 0n) continue;
    return negative ? -x : x;
  }
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/**
 * Discrete Gaussian N_Z(0, sigma^2) with sigma^2 = num/den exactly. CKS 2020, Algorithm 3:
 * t = floor(sigma) + 1, Y ~ DLap(t), accept with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)).
 */
export function discreteGaussian(rng: CryptoRandom, sigmaSqNum: bigint, sigmaSqDen: bigint): bigint {
  if (sigmaSqNum <= 0n || sigmaSqDen <= 0n) throw new RangeError("discreteGaussian needs sigma^2 > 0");
  const t = isqrt(sigmaSqNum / sigmaSqDen) + 1n;
  for (;;) {
    const y = discreteLaplace(rng, t);
    const absY = y < 0n ? -y : y;
    const diff = absY * t * sigmaSqDen - sigmaSqNum;
    // (|Y| - s/t)^2 / (2s) with s = num/den  =  (|Y| t den - num)^2 / (2 num den t^2)
    if (bernoulliExpNeg(rng, diff * diff, 2n * sigmaSqNum * sigmaSqDen * t * t)) return y;
  }
}

/** A finite positive double as an exact dyadic rational m * 2^e. */
export function toDyadic(x: number): { mantissa: bigint; exponent: number } {
  if (!Number.isFinite(x) || x <= 0)
    throw new RangeError(`toDyadic needs a finite positive number, got ${x}`);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0) return { mantissa: fraction, exponent: -1074 };
  return { mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/** sigma^2 / grid^2 as an exact BigInt fraction, for sigma a double and grid = 2^gridExponent. */
export function scaledVariance(sigma: number, gridExponent: number): { num: bigint; den: bigint } {
  const { mantissa, exponent } = toDyadic(sigma);
  const shift = 2 * exponent - 2 * gridExponent;
  const m2 = mantissa * mantissa;
  return shift >= 0 ? { num: m2 << BigInt(shift), den: 1n } : { num: m2, den: 1n << BigInt(-shift) };
}
