import { readFileSync } from "node:fs";
import type { FillRandom } from "../../../src/core/random";

/** The demo plan as raw JSON (untrusted input, before parsePlan). */
export function demoPlanJson(): Record<string, unknown> {
  const url = new URL("../../../public/demo/wdbc-plan.json", import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as Record<string, unknown>;
}

/**
 * A seeded byte source (xoshiro128**, seeded by splitmix32) for TESTS ONLY. It is not cryptographic and must
 * never make real noise: production bytes come from crypto.getRandomValues. The samplers' arithmetic is the
 * same whatever the bytes, so distribution-shape tests may use it, and a fixed seed makes a failure
 * reproducible instead of a once-in-a-million flake.
 */
export function seededFill(seed: number): FillRandom {
  let a = seed | 0;
  const splitmix32 = (): number => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
  let s0 = splitmix32();
  let s1 = splitmix32();
  let s2 = splitmix32();
  let s3 = splitmix32();
  const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  return (bytes) => {
    for (let i = 0; i < bytes.length; i += 4) {
      const x = next();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (x >>> (8 * j)) & 0xff;
    }
  };
}

/** A byte source that plays back a fixed sequence (then zeros), recording the size of every request. */
export function scriptedFill(sequence: number[]): { fill: FillRandom; requests: number[] } {
  const requests: number[] = [];
  let position = 0;
  const fill: FillRandom = (bytes) => {
    requests.push(bytes.length);
    for (let i = 0; i < bytes.length; i++)
      bytes[i] = position < sequence.length ? (sequence[position++] as number) : 0;
  };
  return { fill, requests };
}

/** The bit pattern of each float32, to compare vectors bit for bit (-0 differs from 0, NaN payloads count). */
export function float32Bits(v: Float32Array): number[] {
  return Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));
}

function lnGamma(x: number): number {
  // Lanczos approximation (Numerical Recipes, gammln); relative error below 2e-10.
  const cof = [
    76.18009172947146, -86.50532032941678, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2,
    -0.5395239384953e-5,
  ];
  let y = x;
  let tmp = x + 5.5;
  tmp -= (x + 0.5) * Math.log(tmp);
  let ser = 1.000000000190015;
  for (const c of cof) ser += c / ++y;
  return -tmp + Math.log((2.5066282746310007 * ser) / x);
}

/** Regularised upper incomplete gamma Q(a, x) (Numerical Recipes gammq: series or Lentz continued fraction). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  if (x < a + 1) {
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 10000 && Math.abs(del) > Math.abs(sum) * 1e-16; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
    }
    return 1 - sum * front;
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return front * h;
}

/** P(X >= statistic) for X ~ chi-square with `dof` degrees of freedom. */
export function chiSquareSurvival(statistic: number, dof: number): number {
  return gammaQ(dof / 2, statistic / 2);
}

/**
 * Pearson's chi-square of integer samples against a pmf over the integers. Bins are the integers from lo to
 * hi where every bin expects at least 5 samples; everything below lo and above hi is merged into the end bins.
 */
export function chiSquareTest(
  counts: Map<number, number>,
  n: number,
  pmf: (x: number) => number,
  range: { lo: number; hi: number },
): { statistic: number; dof: number; pValue: number } {
  let lo = range.lo;
  let hi = range.hi;
  while (n * pmf(lo) < 5) lo++;
  while (n * pmf(hi) < 5) hi--;
  let centralProbability = 0;
  for (let x = lo + 1; x < hi; x++) centralProbability += pmf(x);
  // The end bins carry the tails: their probability is what the central bins leave, split by the pmf's mass.
  let lowTail = 0;
  let highTail = 0;
  for (let x = range.lo - 1000; x <= lo; x++) lowTail += pmf(x);
  for (let x = hi; x <= range.hi + 1000; x++) highTail += pmf(x);
  const total = centralProbability + lowTail + highTail;
  let observedLow = 0;
  let observedHigh = 0;
  let statistic = 0;
  for (const [x, c] of counts) {
    if (x <= lo) observedLow += c;
    else if (x >= hi) observedHigh += c;
  }
  for (let x = lo + 1; x < hi; x++) {
    const expected = (n * pmf(x)) / total;
    const observed = counts.get(x) ?? 0;
    statistic += (observed - expected) ** 2 / expected;
  }
  for (const [observed, p] of [
    [observedLow, lowTail],
    [observedHigh, highTail],
  ] as const) {
    const expected = (n * p) / total;
    statistic += (observed - expected) ** 2 / expected;
  }
  const dof = hi - lo + 1 - 1;
  return { statistic, dof, pValue: chiSquareSurvival(statistic, dof) };
}

export function countValues(values: Iterable<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const x of values) counts.set(x, (counts.get(x) ?? 0) + 1);
  return counts;
}

/** Sample mean and variance (two-pass, float64). */
export function meanAndVariance(values: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  const mean = sum / values.length;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += ((values[i] as number) - mean) ** 2;
  return { mean, variance: squares / (values.length - 1) };
}

/** Exact pmf of N_Z(0, sigma^2): exp(-x^2 / (2 sigma^2)) / sum over all integers y of exp(-y^2 / (2 sigma^2)). */
export function discreteGaussianPmf(sigma: number): (x: number) => number {
  const weight = (x: number) => Math.exp(-(x * x) / (2 * sigma * sigma));
  const reach = Math.ceil(40 * sigma); // beyond 40 sigma every term is below 1e-300
  let normaliser = weight(0);
  for (let y = reach; y >= 1; y--) normaliser += 2 * weight(y);
  return (x) => weight(x) / normaliser;
}
