import { describe, expect, it } from "vitest";
import {
  buildDiscreteGaussianTable,
  type DiscreteGaussianTable,
  discreteGaussianTable,
  firstAtLeast,
  sampleDiscreteGaussian,
} from "../../../src/core/privacy/cdt";
import { CryptoRandom } from "../../../src/core/random";
import {
  chiSquareTest,
  countValues,
  discreteGaussianPmf,
  meanAndVariance,
  scriptedFill,
  seededFill,
} from "./support";

const DRAWS = 1_000_000;

/** T_k of the table as a float in [0, 1] (T_K = 1 is implicit). */
function cumulative(table: DiscreteGaussianTable, k: number): number {
  if (k < 0) return 0;
  if (k >= table.hi.length) return 1;
  return (
    ((table.hi[k] as number) * 2 ** 64 + (table.mid[k] as number) * 2 ** 32 + (table.lo[k] as number)) /
    2 ** 96
  );
}

function draw(table: DiscreteGaussianTable, rng: CryptoRandom, n: number): Int32Array {
  const out = new Int32Array(n);
  sampleDiscreteGaussian(table, rng, out);
  return out;
}

/** The bytes of 32-bit words as CryptoRandom reads them (little-endian). */
function wordBytes(words: number[]): number[] {
  return words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, (w >>> 24) & 0xff]);
}

describe("the discrete Gaussian table", () => {
  it.each([
    [1n, 1n, 1],
    [4n, 1n, 2],
    [9n, 4n, 1.5],
    [2360164n, 1n, Math.sqrt(2360164)],
  ])("gives every |k| the probability of N_Z(0, %s/%s) to float precision", (num, den, sigma) => {
    // Prepare
    const pmf = discreteGaussianPmf(sigma);

    // Execute
    const table = buildDiscreteGaussianTable(num, den);

    // Assert: P(|X| = k) = T_k - T_{k-1}, against the float pmf (exact to ~1e-15 relative)
    for (let k = 0; k <= table.maxMagnitude; k++) {
      const expected = (k === 0 ? 1 : 2) * pmf(k);
      const got = cumulative(table, k) - cumulative(table, k - 1);
      expect(Math.abs(got - expected)).toBeLessThanOrEqual(expected * 1e-9 + 1e-15);
    }
  });

  it.each([
    [1n, 1n],
    [4n, 1n],
    [1024n * 1024n, 1n],
    [2047n * 2047n + 3n, 1n],
  ])("at s^2 = %s/%s stays within 2^-60 of the exact distribution and reaches past 9 s", (num, den) => {
    // Prepare
    const s = Math.sqrt(Number(num) / Number(den));

    // Execute
    const table = buildDiscreteGaussianTable(num, den);

    // Assert: the tail beyond K must be below 2^-64, so K is at least about 9.4 s
    expect(table.distanceBound).toBeLessThanOrEqual(2 ** -60);
    expect(table.maxMagnitude).toBeGreaterThanOrEqual(Math.floor(9 * s));
    expect(table.maxMagnitude).toBeLessThanOrEqual(Math.ceil(11 * s) + 2);
  });

  it("is monotone, and leaves the largest magnitude a positive probability below 2^-60", () => {
    // Execute
    const table = buildDiscreteGaussianTable(1536n * 1536n, 1n);

    // Assert
    for (let k = 1; k < table.hi.length; k++) {
      expect(cumulative(table, k)).toBeGreaterThanOrEqual(cumulative(table, k - 1));
    }
    const last = table.hi.length - 1;
    const lastEntry =
      (BigInt(table.hi[last] as number) << 64n) |
      (BigInt(table.mid[last] as number) << 32n) |
      BigInt(table.lo[last] as number);
    const beyond = (1n << 96n) - lastEntry; // P(|X| = K), in units of 2^-96
    expect(beyond).toBeGreaterThan(0n);
    expect(beyond).toBeLessThan(1n << 36n);
  });

  it.each([
    [0n, 1n],
    [1n, 2n],
    [-4n, 1n],
    [4n, 0n],
  ])("refuses s^2 = %s/%s", (num, den) => {
    // Execute
    const execute = () => buildDiscreteGaussianTable(num, den);

    // Assert
    expect(execute).toThrow(/variance s\^2 = num\/den of at least 1/);
  });

  it("finds through its guide the same entry as a search of the whole table, at and around every boundary", () => {
    // Prepare: a wide table (K about 180,000), and every high word that matters: each entry's, one either side
    const table = buildDiscreteGaussianTable(20000n * 20000n, 1n);
    const { hi } = table;
    const whole = (u0: number) => {
      let lo = 0;
      let high = hi.length;
      while (lo < high) {
        const m = (lo + high) >>> 1;
        if ((hi[m] as number) < u0) lo = m + 1;
        else high = m;
      }
      return lo;
    };
    const words = [0, 1, 2 ** 16 - 1, 2 ** 16, 2 ** 32 - 1];
    for (let k = 0; k < hi.length; k += 7) {
      const h = hi[k] as number;
      words.push(h, Math.max(0, h - 1), Math.min(2 ** 32 - 1, h + 1));
    }

    // Execute, Assert
    const wrong = words.filter((u0) => firstAtLeast(table, u0) !== whole(u0));
    expect(hi.length).toBeGreaterThan(100_000);
    expect(wrong).toEqual([]);
  });

  it("is built once per scale and reused", () => {
    // Execute
    const first = discreteGaussianTable(1100n * 1100n, 3n);
    const second = discreteGaussianTable(1100n * 1100n, 3n);

    // Assert
    expect(second).toBe(first);
  });
});

describe("sampleDiscreteGaussian over 10^6 draws", () => {
  it.each([
    [1n, 1],
    [4n, 2],
  ])("follows N_Z(0, %s) by chi-square, with mean and variance within 4 standard errors", (num, sigma) => {
    // Prepare: bytes from crypto.getRandomValues, as in the product; fails by chance once in 10^6 runs
    const table = buildDiscreteGaussianTable(num, 1n);
    const pmf = discreteGaussianPmf(sigma);

    // Execute
    const samples = draw(table, new CryptoRandom(), DRAWS);

    // Assert
    const bound = Math.ceil(8 * sigma);
    const { dof, pValue } = chiSquareTest(countValues(samples), DRAWS, pmf, { lo: -bound, hi: bound });
    expect(dof).toBeGreaterThanOrEqual(8);
    expect(pValue).toBeGreaterThan(1e-6);
    const { mean, variance } = meanAndVariance(samples);
    const sigmaSq = sigma * sigma;
    // The discrete Gaussian's variance is below s^2 by less than 1e-8 at s >= 1 (CKS 2020, Prop. 5).
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(sigmaSq / DRAWS));
    expect(Math.abs(variance - sigmaSq)).toBeLessThan(4 * sigmaSq * Math.sqrt(2 / DRAWS));
  });

  it("has mean 0 and variance s^2 at the mechanism's scale s = 1536.5 (seeded)", () => {
    // Prepare
    const table = buildDiscreteGaussianTable(3073n * 3073n, 4n);
    const sigmaSq = 1536.5 ** 2;

    // Execute
    const samples = draw(table, new CryptoRandom(seededFill(77)), DRAWS);

    // Assert
    const { mean, variance } = meanAndVariance(samples);
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(sigmaSq / DRAWS));
    expect(Math.abs(variance - sigmaSq)).toBeLessThan(4 * sigmaSq * Math.sqrt(2 / DRAWS));
  });

  it("tells a sampler with the wrong variance apart (the test has power)", () => {
    // Prepare: draws of N_Z(0, 4.4) judged against the pmf of N_Z(0, 4)
    const table = buildDiscreteGaussianTable(22n, 5n);

    // Execute
    const samples = draw(table, new CryptoRandom(seededFill(505)), DRAWS);

    // Assert
    const { pValue } = chiSquareTest(countValues(samples), DRAWS, discreteGaussianPmf(2), {
      lo: -16,
      hi: 16,
    });
    expect(pValue).toBeLessThan(1e-6);
  });

  it("decides ties of the high word on the lower words, and signs non-zero draws with a fresh bit", () => {
    // Prepare: U = T_0 - 1 must give 0; U = T_0 must give |X| = 1, signed by the next word's low bit
    const table = buildDiscreteGaussianTable(1n, 1n);
    const [h, m, l] = [table.hi[0] as number, table.mid[0] as number, table.lo[0] as number];
    const justBelow = new CryptoRandom(scriptedFill(wordBytes([h, m, l - 1])).fill);
    const exactlyAt = new CryptoRandom(scriptedFill(wordBytes([h, m, l, 1])).fill);

    // Execute
    const zero = draw(table, justBelow, 1);
    const one = draw(table, exactlyAt, 1);

    // Assert
    expect(l).toBeGreaterThan(0);
    expect(zero[0]).toBe(0);
    expect(one[0]).toBe(-1);
  });

  it("returns the largest magnitude for the largest uniform word", () => {
    // Prepare
    const table = buildDiscreteGaussianTable(1n, 1n);
    const rng = new CryptoRandom(scriptedFill(wordBytes([0xffffffff, 0xffffffff, 0xffffffff, 0])).fill);

    // Execute
    const out = draw(table, rng, 1);

    // Assert
    expect(out[0]).toBe(table.maxMagnitude);
  });
});
