import { describe, expect, it } from "vitest";
import {
  bernoulliExpNeg,
  discreteGaussian,
  discreteLaplace,
  scaledVariance,
  toDyadic,
} from "../../../src/core/privacy/discrete-gaussian";
import { CryptoRandom } from "../../../src/core/random";
import {
  chiSquareSurvival,
  chiSquareTest,
  countValues,
  discreteGaussianPmf,
  meanAndVariance,
  seededFill,
} from "./support";

const DRAWS = 200000;

function draw(rng: CryptoRandom, num: bigint, den: bigint, n: number): number[] {
  return Array.from({ length: n }, () => Number(discreteGaussian(rng, num, den)));
}

describe("the chi-square helper itself", () => {
  it("matches the closed forms for 2 and 4 degrees of freedom", () => {
    // Prepare
    const xs = [0.5, 3, 12.7, 40];

    // Execute
    const two = xs.map((x) => chiSquareSurvival(x, 2));
    const four = xs.map((x) => chiSquareSurvival(x, 4));

    // Assert: Q = exp(-x/2) and exp(-x/2) (1 + x/2)
    xs.forEach((x, i) => {
      expect(two[i]).toBeCloseTo(Math.exp(-x / 2), 9);
      expect((four[i] as number) / (Math.exp(-x / 2) * (1 + x / 2))).toBeCloseTo(1, 8);
    });
  });

  it("gives the textbook critical value of 10 degrees of freedom at p = 0.001", () => {
    // Prepare
    const critical = 29.588;

    // Execute
    const p = chiSquareSurvival(critical, 10);

    // Assert
    expect(p).toBeCloseTo(0.001, 5);
  });
});

describe("the reference pmf", () => {
  it.each([
    [1, 0.3989422783],
    [2, 0.1994711402],
  ])("gives P(0) at sigma = %s to 1e-9", (sigma, p0) => {
    // Prepare
    const pmf = discreteGaussianPmf(sigma);

    // Execute
    const value = pmf(0);

    // Assert
    expect(Math.abs(value - p0)).toBeLessThan(1e-9);
  });
});

describe("discreteGaussian", () => {
  it.each([
    [1n, 1n, 1, 101],
    [4n, 1n, 2, 202],
    [9n, 4n, 1.5, 303],
  ])("follows N_Z(0, %s/%s) by chi-square over 200000 seeded draws", (num, den, sigma, seed) => {
    // Prepare
    const rng = new CryptoRandom(seededFill(seed));
    const pmf = discreteGaussianPmf(sigma);

    // Execute
    const samples = draw(rng, num, den, DRAWS);

    // Assert
    const bound = Math.ceil(6 * sigma);
    const { dof, pValue } = chiSquareTest(countValues(samples), DRAWS, pmf, { lo: -bound, hi: bound });
    expect(dof).toBeGreaterThanOrEqual(8);
    expect(pValue).toBeGreaterThan(1e-6);
  });

  it("has variance sigma^2 = 4, not sigma = 2 (seeded, 200000 draws, 4 standard errors)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(404));
    const sigmaSq = 4;

    // Execute
    const { mean, variance } = meanAndVariance(draw(rng, 4n, 1n, DRAWS));

    // Assert
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(sigmaSq / DRAWS));
    expect(Math.abs(variance - sigmaSq)).toBeLessThan(4 * sigmaSq * Math.sqrt(2 / DRAWS));
  });

  it("follows N_Z(0, 4) with bytes from crypto.getRandomValues", () => {
    // Prepare
    const rng = new CryptoRandom();
    const pmf = discreteGaussianPmf(2);

    // Execute
    const samples = draw(rng, 4n, 1n, DRAWS);

    // Assert: the only test here whose bytes are not seeded; it fails by chance once in a million runs
    const { pValue } = chiSquareTest(countValues(samples), DRAWS, pmf, { lo: -12, hi: 12 });
    expect(pValue).toBeGreaterThan(1e-6);
  });

  it("tells a sampler with the wrong variance apart (the test has power)", () => {
    // Prepare: samples of N_Z(0, 4.4) judged against the pmf of N_Z(0, 4)
    const rng = new CryptoRandom(seededFill(505));
    const pmf = discreteGaussianPmf(2);

    // Execute
    const samples = draw(rng, 22n, 5n, DRAWS);

    // Assert
    const { pValue } = chiSquareTest(countValues(samples), DRAWS, pmf, { lo: -12, hi: 12 });
    expect(pValue).toBeLessThan(1e-6);
  });

  it.each([
    [0n, 1n],
    [-4n, 1n],
    [4n, 0n],
  ])("refuses sigma^2 = %s/%s", (num, den) => {
    // Prepare
    const rng = new CryptoRandom(seededFill(6));

    // Execute
    const execute = () => discreteGaussian(rng, num, den);

    // Assert
    expect(execute).toThrow(RangeError);
  });
});

describe("bernoulliExpNeg", () => {
  it.each([
    [3n, 10n, 11],
    [1n, 1n, 12],
    [27n, 10n, 13],
  ])(
    "is true with frequency exp(-%s/%s) within 4 standard errors (200000 seeded draws)",
    (num, den, seed) => {
      // Prepare
      const rng = new CryptoRandom(seededFill(seed));
      const p = Math.exp(-Number(num) / Number(den));

      // Execute
      let hits = 0;
      for (let i = 0; i < DRAWS; i++) if (bernoulliExpNeg(rng, num, den)) hits++;

      // Assert
      expect(Math.abs(hits / DRAWS - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / DRAWS));
    },
  );

  it("is always true for gamma = 0", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(14));

    // Execute
    const results = Array.from({ length: 1000 }, () => bernoulliExpNeg(rng, 0n, 7n));

    // Assert
    expect(results.every((r) => r)).toBe(true);
  });

  it.each([
    [-1n, 1n],
    [1n, 0n],
  ])("refuses %s/%s", (num, den) => {
    // Prepare
    const rng = new CryptoRandom(seededFill(15));

    // Execute
    const execute = () => bernoulliExpNeg(rng, num, den);

    // Assert
    expect(execute).toThrow(RangeError);
  });
});

describe("discreteLaplace", () => {
  it("with t = 3 is symmetric with variance 2q/(1-q)^2, q = exp(-1/3) (200000 seeded draws)", () => {
    // Prepare
    const t = 3;
    const rng = new CryptoRandom(seededFill(31));
    const q = Math.exp(-1 / t);
    const pmf = (x: number) => ((1 - q) / (1 + q)) * q ** Math.abs(x);
    let fourthMoment = 0;
    for (let x = -400; x <= 400; x++) fourthMoment += pmf(x) * x ** 4;
    const expectedVariance = (2 * q) / (1 - q) ** 2;

    // Execute
    const samples = Array.from({ length: DRAWS }, () => Number(discreteLaplace(rng, BigInt(t))));

    // Assert
    const { mean, variance } = meanAndVariance(samples);
    const positives = samples.filter((x) => x > 0).length;
    const negatives = samples.filter((x) => x < 0).length;
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(expectedVariance / DRAWS));
    expect(Math.abs(variance - expectedVariance)).toBeLessThan(
      4 * Math.sqrt((fourthMoment - expectedVariance ** 2) / DRAWS),
    );
    expect(Math.abs(positives - negatives)).toBeLessThan(4 * Math.sqrt(positives + negatives));
    const { pValue } = chiSquareTest(countValues(samples), DRAWS, pmf, { lo: -60, hi: 60 });
    expect(pValue).toBeGreaterThan(1e-6);
  });
});

describe("toDyadic", () => {
  /** x * 2^k computed exactly: scaling by a power of two is exact while the result stays in range. */
  function timesPowerOfTwo(x: number, k: number): number {
    let y = x;
    let left = k;
    while (left !== 0) {
      const step = Math.max(-1000, Math.min(1000, left));
      y *= 2 ** step;
      left -= step;
    }
    return y;
  }

  it.each([
    1,
    0.3,
    0.1,
    2 / 3,
    8 - 2 ** -50,
    3.7e12,
    2 ** 60 + 2 ** 8,
    Number.MAX_VALUE,
    2 ** -1022, // smallest normal
    1e-310, // subnormal
    Number.MIN_VALUE,
  ])("writes %s exactly as mantissa * 2^exponent", (x) => {
    // Prepare
    const isSubnormal = x < 2 ** -1022;

    // Execute
    const { mantissa, exponent } = toDyadic(x);

    // Assert
    expect(mantissa).toBeLessThan(2n ** 53n);
    if (!isSubnormal) expect(mantissa).toBeGreaterThanOrEqual(2n ** 52n);
    if (exponent >= 0) expect(BigInt(x)).toBe(mantissa << BigInt(exponent));
    else expect(timesPowerOfTwo(x, -exponent)).toBe(Number(mantissa));
  });

  it("gives the known dyadic form of 0.3", () => {
    // Prepare: the double nearest 0.3 is 5404319552844595 / 2^54
    const x = 0.3;

    // Execute
    const { mantissa, exponent } = toDyadic(x);

    // Assert
    expect(mantissa).toBe(5404319552844595n);
    expect(exponent).toBe(-54);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])("refuses %s", (x) => {
    // Prepare
    const value = x;

    // Execute
    const execute = () => toDyadic(value);

    // Assert
    expect(execute).toThrow(RangeError);
  });
});

describe("scaledVariance", () => {
  /** num/den == target as rationals, by cross-multiplication. */
  function expectFraction(actual: { num: bigint; den: bigint }, num: bigint, den: bigint): void {
    expect(actual.den).toBeGreaterThan(0n);
    expect(actual.num * den).toBe(num * actual.den);
  }

  it("is exact for dyadic sigmas", () => {
    // Prepare
    const cases: [number, number, bigint, bigint][] = [
      [3, 0, 9n, 1n],
      [1.5, -2, 36n, 1n],
      [2 ** -20, -30, 2n ** 20n, 1n],
      [1, 3, 1n, 64n],
      [0.75, -11, 3n * 3n * 2n ** 18n, 1n],
    ];

    // Execute
    const results = cases.map(([sigma, g]) => scaledVariance(sigma, g));

    // Assert
    cases.forEach(([, , num, den], i) => {
      expectFraction(results[i] as { num: bigint; den: bigint }, num, den);
    });
  });

  it("is exact for sigma = 0.3 on the grid 2^-12: (5404319552844595 / 2^54)^2 * 2^24", () => {
    // Prepare
    const m = 5404319552844595n;

    // Execute
    const result = scaledVariance(0.3, -12);

    // Assert
    expectFraction(result, m * m, 2n ** 84n);
    expect(Number(result.num) / Number(result.den)).toBeCloseTo(0.09 * 2 ** 24, 6);
  });
});
