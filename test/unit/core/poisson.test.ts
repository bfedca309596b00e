import { afterEach, describe, expect, it, vi } from "vitest";
import { poissonSample } from "../../../src/core/privacy/poisson";
import { CryptoRandom } from "../../../src/core/random";
import { chiSquareTest, countValues, scriptedFill, seededFill } from "./support";

/** Little-endian bytes of 32-bit words, for a scripted byte source that CryptoRandom reads as those words. */
function wordBytes(words: number[]): number[] {
  return words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]);
}

/** ln C(n, k) + k ln q + (n - k) ln(1 - q), summed in float64. */
function binomialPmf(n: number, q: number): (k: number) => number {
  const logFact = [0];
  for (let i = 1; i <= n; i++) logFact.push((logFact[i - 1] as number) + Math.log(i));
  return (k) =>
    k < 0 || k > n
      ? 0
      : Math.exp(
          (logFact[n] as number) -
            (logFact[k] as number) -
            (logFact[n - k] as number) +
            k * Math.log(q) +
            (n - k) * Math.log1p(-q),
        );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("poissonSample", () => {
  it("draws a Binomial(N, q) number of indices (chi-square, 20000 seeded samples of N = 200, q = 3/8)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(11));
    const n = 200;
    const q = 3 / 8;
    const trials = 20000;

    // Execute
    const sizes = Array.from({ length: trials }, () => poissonSample(n, q, rng).length);

    // Assert
    const { dof, pValue } = chiSquareTest(countValues(sizes), trials, binomialPmf(n, q), { lo: 0, hi: n });
    expect(dof).toBeGreaterThan(20);
    expect(pValue).toBeGreaterThan(1e-4);
  });

  it("includes every index with probability exactly q: 3/8 per index and independent pairs (chi-square)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(12));
    const n = 16;
    const trials = 40000;
    const hits = new Array<number>(n).fill(0);
    // Joint pattern of indices 0 and 1 (and of 14 and 15): 4 cells with probabilities (5/8)^2 ... (3/8)^2.
    const pairs = new Map<number, number>();

    // Execute
    for (let t = 0; t < trials; t++) {
      const sample = poissonSample(n, 3 / 8, rng);
      for (const i of sample) hits[i] = (hits[i] as number) + 1;
      const has = (i: number) => (sample.includes(i) ? 1 : 0);
      const a = 2 * has(0) + has(1);
      const b = 2 * has(14) + has(15);
      pairs.set(a, (pairs.get(a) ?? 0) + 1);
      pairs.set(4 + b, (pairs.get(4 + b) ?? 0) + 1);
    }

    // Assert: each index's count is Binomial(trials, 3/8), within 4.5 standard errors
    const sd = Math.sqrt(trials * (3 / 8) * (5 / 8));
    for (const h of hits) expect(Math.abs(h - trials * (3 / 8))).toBeLessThan(4.5 * sd);
    const cell = (k: number) => ((k & 2 ? 3 : 5) / 8) * ((k & 1 ? 3 : 5) / 8);
    for (const offset of [0, 4]) {
      const counts = new Map([0, 1, 2, 3].map((k) => [k, pairs.get(offset + k) ?? 0]));
      const { pValue } = chiSquareTest(counts, trials, (k) => (k >= 0 && k <= 3 ? cell(k) : 0), {
        lo: 0,
        hi: 3,
      });
      expect(pValue).toBeGreaterThan(1e-4);
    }
  });

  it("decides by q's binary expansion: a uniform word below q's first word includes, above excludes, a tie reads on", () => {
    // Prepare: q = 0.75 is the single word 0xC0000000; q = 1/3 as a double is 0x55555555 0x55555400
    const { fill } = scriptedFill(
      wordBytes([
        0xbfffffff, 0xc0000000, 0xffffffff, 0x55555555, 0x555553ff, 0x55555555, 0x55555400, 0x55555556,
      ]),
    );
    const rng = new CryptoRandom(fill);

    // Execute
    const threeQuarters = poissonSample(3, 0.75, rng);
    const third = poissonSample(3, 1 / 3, rng);

    // Assert: below includes; equal to the whole expansion (U = q) or above excludes
    expect([...threeQuarters]).toEqual([0]);
    expect([...third]).toEqual([0]);
  });

  it("returns sorted indices, none for q = 0 and all for q = 1, without drawing randomness for either", () => {
    // Prepare
    const { fill, requests } = scriptedFill([]);
    const rng = new CryptoRandom(fill);

    // Execute
    const none = poissonSample(1000, 0, rng);
    const all = poissonSample(1000, 1, rng);
    const some = poissonSample(1000, 0.5, new CryptoRandom(seededFill(3)));

    // Assert
    expect(none).toHaveLength(0);
    expect([...all]).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(requests).toEqual([]);
    expect([...some]).toEqual([...some].sort((a, b) => a - b));
    expect(new Set(some).size).toBe(some.length);
    expect(some.length).toBeGreaterThan(400);
    expect(some.length).toBeLessThan(600);
  });

  it("handles the smallest positive q (a subnormal: 34 words of expansion)", () => {
    // Prepare: all-zero words tie with q's leading zeros, and the last word (1 in its lowest bit) includes
    const { fill } = scriptedFill([]);

    // Execute
    const sample = poissonSample(2, Number.MIN_VALUE, new CryptoRandom(fill));

    // Assert: U = 0 < 2^-1074, so an all-zero source includes both
    expect([...sample]).toEqual([0, 1]);
  });

  it("never calls Math.random", () => {
    // Prepare
    const spy = vi.spyOn(Math, "random");

    // Execute
    poissonSample(10000, 0.3, new CryptoRandom(seededFill(5)));

    // Assert
    expect(spy).not.toHaveBeenCalled();
  });

  it.each([
    [-0.1, "sampling rate"],
    [1.5, "sampling rate"],
    [Number.NaN, "sampling rate"],
  ])("refuses q = %s", (q, message) => {
    expect(() => poissonSample(10, q, new CryptoRandom(seededFill(1)))).toThrow(message);
  });

  it("refuses a count that is not a whole number", () => {
    expect(() => poissonSample(2.5, 0.5, new CryptoRandom(seededFill(1)))).toThrow(/whole count/);
  });
});
