import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors";
import { clipToNorm } from "../../../src/core/privacy/clip";
import { toDyadic } from "../../../src/core/privacy/discrete-gaussian";
import {
  GRID_BITS_BELOW_SIGMA,
  noiseStd,
  type PrivacyParams,
  privatizeDelta,
} from "../../../src/core/privacy/mechanism";
import { CryptoRandom } from "../../../src/core/random";
import { l2Norm } from "../../../src/core/vector";
import { float32Bits, meanAndVariance, seededFill } from "./support";

/** A seeded vector of float32 values uniform in (-scale, scale). */
function randomVector(length: number, scale: number, seed: number): Float32Array {
  const rng = new CryptoRandom(seededFill(seed));
  return Float32Array.from({ length }, () => ((rng.uint32() + 0.5) / 2 ** 32 - 0.5) * 2 * scale);
}

function isPowerOfTwo(x: number): boolean {
  return x > 0 && toDyadic(x).mantissa === 2n ** 52n;
}

/**
 * The rounded, clipped vector before noise, in grid ticks. The noise draws do not depend on the delta, so the
 * same seed gives the same noise for the delta and for a zero vector, and their difference is the ticks.
 */
function preNoiseTicks(delta: Float32Array, params: PrivacyParams, seed: number) {
  const released = privatizeDelta(delta, params, new CryptoRandom(seededFill(seed)));
  const noiseOnly = privatizeDelta(
    new Float32Array(delta.length),
    params,
    new CryptoRandom(seededFill(seed)),
  );
  const ticks = Array.from(released.delta, (x, i) => (x - (noiseOnly.delta[i] as number)) / released.grid);
  return { released, ticks };
}

describe("privatizeDelta without noise", () => {
  it("equals clipping to C when the noise multiplier is 0", () => {
    // Prepare
    const delta = randomVector(257, 1, 1);
    const params = { clipNorm: 0.8, noiseMultiplier: 0, delta: 1e-5 };

    // Execute
    const result = privatizeDelta(delta, params);

    // Assert
    // float32 rounding may leave the norm a hair above C; the mechanism then shrinks by float32 ulps.
    const expected = Float32Array.from(clipToNorm(delta, 0.8).clipped);
    expect(l2Norm(result.delta)).toBeLessThanOrEqual(0.8);
    expect(Math.abs(l2Norm(result.delta) - 0.8)).toBeLessThan(1e-6);
    result.delta.forEach((x, i) => {
      expect(Math.abs(x - (expected[i] as number))).toBeLessThanOrEqual(
        Math.abs(expected[i] as number) * 2 ** -20,
      );
    });
    expect(result.preClipNorm).toBe(l2Norm(delta));
    expect(result.postClipNorm).toBe(l2Norm(result.delta));
    expect(result.sigma).toBe(0);
    expect(result.grid).toBe(0);
    expect(result.clipNorm).toBe(0.8);
  });

  it("returns a small delta bit for bit", () => {
    // Prepare
    const delta = randomVector(100, 0.01, 2);
    delta[3] = -0;

    // Execute
    const result = privatizeDelta(delta, { clipNorm: 5, noiseMultiplier: 0, delta: 1e-5 });

    // Assert
    expect(float32Bits(result.delta)).toEqual(float32Bits(delta));
  });
});

describe("privatizeDelta noise scale and grid", () => {
  it.each([
    [0.02, 2],
    [0.1, 1.5],
    [0.5, 1],
    [1.1, 0.7],
    [3, 10],
    [0.37, 0.013],
  ])(
    "with z = %s and C = %s has sigma = 2zC and a power-of-two grid with sigma/grid in [2^10, 2^11)",
    (z, c) => {
      // Prepare
      const params = { clipNorm: c, noiseMultiplier: z, delta: 1e-5 };

      // Execute
      const result = privatizeDelta(randomVector(64, c, 3), params, new CryptoRandom(seededFill(4)));

      // Assert
      expect(result.sigma).toBe(2 * z * c);
      expect(noiseStd(params)).toBe(2 * z * c);
      expect(isPowerOfTwo(result.grid)).toBe(true);
      expect(result.sigma / result.grid).toBeGreaterThanOrEqual(2 ** GRID_BITS_BELOW_SIGMA);
      expect(result.sigma / result.grid).toBeLessThan(2 ** (GRID_BITS_BELOW_SIGMA + 1));
    },
  );

  it("keeps sigma/grid in [2^10, 2^11) when sigma is the double just below a power of two", () => {
    // Prepare: 2 * (4 - 2^-51) * 1 = 8 - 2^-50, the largest double below 8; Math.log2 of it rounds to 3
    const params = { clipNorm: 1, noiseMultiplier: 4 - 2 ** -51, delta: 1e-5 };

    // Execute
    const result = privatizeDelta(new Float32Array(10), params, new CryptoRandom(seededFill(5)));

    // Assert
    expect(result.sigma).toBe(8 - 2 ** -50);
    expect(result.sigma / result.grid).toBeGreaterThanOrEqual(2 ** GRID_BITS_BELOW_SIGMA);
    expect(result.sigma / result.grid).toBeLessThan(2 ** (GRID_BITS_BELOW_SIGMA + 1));
  });

  it("releases only multiples of the grid", () => {
    // Prepare
    const delta = randomVector(1000, 0.2, 6);

    // Execute
    const result = privatizeDelta(delta, { clipNorm: 2, noiseMultiplier: 0.3, delta: 1e-5 });

    // Assert
    const offGrid = Array.from(result.delta).filter((x) => !Number.isInteger(x / result.grid));
    expect(offGrid).toEqual([]);
    expect(new Set(result.delta).size).toBeGreaterThan(100);
  });

  it("refuses a grid too coarse for the number of weights, and says what to change", () => {
    // Prepare: sigma = 200, grid = 1/8, rounding bound = sqrt(300)/16 > C = 1
    const params = { clipNorm: 1, noiseMultiplier: 100, delta: 1e-5 };

    // Execute
    const execute = () => privatizeDelta(new Float32Array(300), params);

    // Assert
    expect(execute).toThrow(RangeError);
    expect(execute).toThrow(/too coarse for 300 weights at clipNorm 1.*noise multiplier.*clipNorm/);
  });
});

describe("privatizeDelta clipping with rounding", () => {
  it.each([1, 2, 3, 10, 100, 257, 1000, 4099])(
    "keeps the rounded pre-noise vector of a large delta of length %i inside the C-ball",
    (length) => {
      // Prepare
      const params = { clipNorm: 2, noiseMultiplier: 0.05, delta: 1e-5 };
      const floor = 100 / Math.sqrt(length); // every |coordinate| >= floor, so the norm is >= 100 = 50 C
      const delta = randomVector(length, floor, 100 + length).map((x) => x + Math.sign(x) * floor);

      // Execute
      const { released, ticks } = preNoiseTicks(delta, params, 7 + length);

      // Assert
      const roundingBound = (released.grid * Math.sqrt(length)) / 2;
      const recovered = l2Norm(ticks) * released.grid;
      expect(ticks.every(Number.isInteger)).toBe(true);
      expect(released.preClipNorm).toBe(l2Norm(delta));
      expect(released.preClipNorm).toBeGreaterThan(100);
      expect(recovered).toBeLessThanOrEqual(2 * (1 + 1e-12));
      expect(recovered).toBeGreaterThanOrEqual(2 - 2 * roundingBound);
      expect(Math.abs(released.postClipNorm - recovered)).toBeLessThanOrEqual(1e-12 * recovered);
    },
  );

  it.each([1, 4, 9, 100, 257, 1024])(
    "stays inside the C-ball when every coordinate of a length-%i delta sits on a half tick (worst rounding)",
    (length) => {
      // Prepare: coordinates (k + 1/2) * grid at the inner clip radius all round up to k + 1
      const params = { clipNorm: 1.5, noiseMultiplier: 0.02, delta: 1e-5 };
      const grid = privatizeDelta(new Float32Array(1), params, new CryptoRandom(seededFill(8))).grid;
      const innerClip = 1.5 - (grid * Math.sqrt(length)) / 2;
      const k = Math.floor(innerClip / (Math.sqrt(length) * grid) - 0.5);
      const delta = new Float32Array(length).fill((k + 0.5) * grid);

      // Execute
      const { released, ticks } = preNoiseTicks(delta, params, 9 + length);

      // Assert
      const recovered = l2Norm(ticks) * released.grid;
      expect(released.grid).toBe(grid);
      expect(recovered).toBeLessThanOrEqual(1.5 * (1 + 1e-12));
      expect(recovered).toBeGreaterThan(1.5 - 2 * Math.sqrt(length) * grid);
    },
  );

  it.each([1, 4, 9, 100, 257, 1024])(
    "pulls a length-%i delta on half ticks just inside C in by the rounding margin before rounding",
    (length) => {
      // Prepare: C = (K + 3/4) sqrt(n) grid and coordinates (K + 1/2) grid, so ||delta|| < C; rounding them
      // without the margin would give (K + 1) sqrt(n) grid > C.
      const z = 0.02;
      const grid = privatizeDelta(new Float32Array(1), {
        clipNorm: 1.2,
        noiseMultiplier: z,
        delta: 1e-5,
      }).grid;
      const K = Math.floor(1.2 / (Math.sqrt(length) * grid)) - 1;
      const clipNorm = (K + 0.75) * Math.sqrt(length) * grid;
      const params = { clipNorm, noiseMultiplier: z, delta: 1e-5 };
      const delta = new Float32Array(length).fill((K + 0.5) * grid);

      // Execute
      const { released, ticks } = preNoiseTicks(delta, params, 13 + length);

      // Assert
      const recovered = l2Norm(ticks) * released.grid;
      expect(released.grid).toBe(grid);
      expect(released.preClipNorm).toBeLessThan(clipNorm);
      expect((K + 1) * Math.sqrt(length) * grid).toBeGreaterThan(clipNorm);
      expect(recovered).toBeLessThanOrEqual(clipNorm * (1 + 1e-12));
    },
  );

  it("never releases a non-finite value for a delta holding NaN or Infinity", () => {
    // Prepare: training that diverged gives such deltas; a NaN upload is outside the C-ball and the noise
    const params = { clipNorm: 2, noiseMultiplier: 0.1, delta: 1e-5 };
    const bad = [Number.NaN, Number.POSITIVE_INFINITY].map((x) => {
      const delta = randomVector(20, 0.1, 10);
      delta[4] = x;
      return delta;
    });

    // Execute
    const outcomes = bad.map((delta) => {
      try {
        return privatizeDelta(delta, params, new CryptoRandom(seededFill(11))).delta.every(Number.isFinite);
      } catch (error) {
        return error instanceof InputError;
      }
    });

    // Assert: refused with a RangeError, or released with finite values only
    expect(outcomes).toEqual([true, true]);
  });
});

describe("privatizeDelta noise statistics", () => {
  it("adds noise of mean 0 and variance sigma^2 for sigma = 0.3 (200000 weights, seeded, 4 standard errors)", () => {
    // Prepare: sigma = 2 z C = 2 * 0.1 * 1.5
    const n = 200000;
    const params = { clipNorm: 1.5, noiseMultiplier: 0.1, delta: 1e-5 };
    const sigma = 0.3;

    // Execute
    const result = privatizeDelta(new Float32Array(n), params, new CryptoRandom(seededFill(12)));

    // Assert
    const { mean, variance } = meanAndVariance(result.delta);
    expect(result.sigma).toBeCloseTo(sigma, 15);
    expect(result.postClipNorm).toBe(0);
    expect(Math.abs(mean)).toBeLessThan((4 * sigma) / Math.sqrt(n));
    expect(Math.abs(variance - sigma ** 2)).toBeLessThan(4 * sigma ** 2 * Math.sqrt(2 / n));
  });

  it("draws fresh noise on each call from the crypto source", () => {
    // Prepare
    const params = { clipNorm: 1, noiseMultiplier: 0.5, delta: 1e-5 };

    // Execute
    const first = privatizeDelta(new Float32Array(50), params);
    const second = privatizeDelta(new Float32Array(50), params);

    // Assert
    expect(float32Bits(first.delta)).not.toEqual(float32Bits(second.delta));
  });
});
