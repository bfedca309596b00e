import { describe, expect, it } from "vitest";
import { clipToNorm } from "../../../src/core/privacy/clip";
import { CryptoRandom } from "../../../src/core/random";
import {
  allFinite,
  assertSameLength,
  concat,
  l2Norm,
  splitByShapes,
  subtract,
} from "../../../src/core/vector";
import { seededFill } from "./support";

/** A seeded vector of float32 values uniform in (-scale, scale). */
function randomVector(length: number, scale: number, seed: number): Float32Array {
  const rng = new CryptoRandom(seededFill(seed));
  return Float32Array.from({ length }, () => ((rng.uint32() + 0.5) / 2 ** 32 - 0.5) * 2 * scale);
}

describe("l2Norm", () => {
  it("is exact on Pythagorean vectors", () => {
    // Prepare
    const a = Float32Array.of(3, -4);
    const b = Float32Array.of(2, 3, -6);

    // Execute
    const na = l2Norm(a);
    const nb = l2Norm(b);

    // Assert
    expect(na).toBe(5);
    expect(nb).toBe(7);
  });

  it("accumulates in float64 where float32 would lose the small terms", () => {
    // Prepare: 1 + 2^-26 is 1 in float32, so a float32 accumulator would return exactly 1.
    const v = new Float32Array(10001).fill(2 ** -13);
    v[0] = 1;

    // Execute
    const norm = l2Norm(v);

    // Assert: every partial sum is a multiple of 2^-26 below 2, exact in float64
    expect(norm).toBe(Math.sqrt(1 + 10000 * 2 ** -26));
    expect(norm).toBeGreaterThan(1.00007);
  });
});

describe("clipToNorm", () => {
  it.each([
    [1, 0.37, 11],
    [257, 2, 12],
    [10007, 0.05, 13],
    [3, 1000, 14],
  ])(
    "brings a vector of length %i down to norm exactly C = %s (relative 1e-12)",
    (length, clipNorm, seed) => {
      // Prepare
      const v = randomVector(length, (clipNorm * 50) / Math.sqrt(length) + clipNorm, seed);
      const before = l2Norm(v);

      // Execute
      const { clipped, norm } = clipToNorm(v, clipNorm);

      // Assert
      expect(before).toBeGreaterThan(clipNorm);
      expect(norm).toBe(before);
      expect(Math.abs(l2Norm(clipped) - clipNorm) / clipNorm).toBeLessThan(1e-12);
    },
  );

  it("returns the vector bit for bit when its norm is below C", () => {
    // Prepare
    const v = randomVector(500, 0.01, 21);
    v[7] = -0;
    const clipNorm = l2Norm(v) * 1.0001;

    // Execute
    const { clipped, norm } = clipToNorm(v, clipNorm);

    // Assert
    expect(norm).toBeLessThan(clipNorm);
    expect(Array.from(clipped)).toEqual(Array.from(v));
    expect(Object.is(clipped[7], -0)).toBe(true);
  });

  it("clips the global norm over all layers with one factor, not each layer to C", () => {
    // Prepare: layer norms 3C and 4C, so the global norm is exactly 5C and both layers shrink by 1/5.
    const clipNorm = 5;
    const a = Float32Array.of(9, 12); // norm 15 = 3C
    const b = Float32Array.of(12, 0, -16); // norm 20 = 4C
    const v = concat([a, b]);

    // Execute
    const { clipped, norm } = clipToNorm(v, clipNorm);

    // Assert: per-layer clipping would leave both layers at norm C = 5 instead of 3 and 4
    expect(norm).toBe(25);
    expect(Array.from(clipped)).toEqual(Array.from(v, (x) => x * (clipNorm / 25)));
    expect(l2Norm(clipped.subarray(0, 2))).toBeCloseTo(3, 12);
    expect(l2Norm(clipped.subarray(2))).toBeCloseTo(4, 12);
  });

  it("scales every part of a large concatenation by the same factor", () => {
    // Prepare
    const layers = [
      randomVector(240, 3, 31),
      randomVector(8, 0.1, 32),
      randomVector(8, 7, 33),
      randomVector(1, 2, 34),
    ];
    const v = concat(layers);
    const clipNorm = 1.25;

    // Execute
    const { clipped } = clipToNorm(v, clipNorm);

    // Assert
    const factor = clipNorm / l2Norm(v);
    let offset = 0;
    for (const layer of layers) {
      for (let i = 0; i < layer.length; i++) {
        expect(clipped[offset + i]).toBe((layer[i] as number) * factor);
      }
      offset += layer.length;
    }
  });

  it("clips a vector whose float32-accumulated norm would look like it is within C", () => {
    // Prepare: float32 accumulation gives norm exactly 1 here, float64 gives 1.00007.
    const v = new Float32Array(10001).fill(2 ** -13);
    v[0] = 1;

    // Execute
    const { clipped } = clipToNorm(v, 1);

    // Assert
    expect(clipped[0]).toBeLessThan(1);
    expect(Math.abs(l2Norm(clipped) - 1)).toBeLessThan(1e-12);
  });

  it.each([0, -1, Number.NaN])("refuses clipNorm %s", (clipNorm) => {
    // Prepare
    const v = Float32Array.of(1, 2);

    // Execute
    const execute = () => clipToNorm(v, clipNorm);

    // Assert
    expect(execute).toThrow(RangeError);
  });
});

describe("vector helpers", () => {
  it("subtract computes a - b element by element", () => {
    // Prepare
    const a = Float32Array.of(1.5, -2, 0.25);
    const b = Float32Array.of(0.5, 3, 0.25);

    // Execute
    const d = subtract(a, b);

    // Assert
    expect(Array.from(d)).toEqual([1, -5, 0]);
  });

  it("subtract and assertSameLength refuse different lengths, naming both", () => {
    // Prepare
    const a = new Float32Array(3);
    const b = new Float32Array(4);

    // Execute
    const executeSubtract = () => subtract(a, b);
    const executeAssert = () => assertSameLength(a, b, "site update");

    // Assert
    expect(executeSubtract).toThrow(/subtract: .*\(3 and 4\)/);
    expect(executeAssert).toThrow(/^site update: .*\(3 and 4\)/);
  });

  it("allFinite finds NaN and infinities anywhere", () => {
    // Prepare
    const fine = Float32Array.of(0, -0, 3.4e38, 1e-45);

    // Execute
    const results = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map((bad) => {
      const v = Float32Array.of(1, 2, 3);
      v[2] = bad;
      return allFinite(v);
    });

    // Assert
    expect(allFinite(fine)).toBe(true);
    expect(results).toEqual([false, false, false]);
  });

  it("splitByShapes gives views that follow the shapes and share the buffer", () => {
    // Prepare
    const v = Float32Array.from({ length: 2 * 3 + 3 + 3 * 1 + 1 }, (_, i) => i);

    // Execute
    const parts = splitByShapes(v, [[2, 3], [3], [3, 1], [1]]);
    v[6] = 100;

    // Assert
    expect(parts.map((p) => Array.from(p))).toEqual([[0, 1, 2, 3, 4, 5], [100, 7, 8], [9, 10, 11], [12]]);
    expect(parts[1]?.buffer).toBe(v.buffer);
  });

  it("splitByShapes refuses shapes that do not cover the vector exactly", () => {
    // Prepare
    const v = new Float32Array(10);

    // Execute
    const tooFew = () => splitByShapes(v, [[3, 3]]);
    const tooMany = () => splitByShapes(v, [[3, 3], [2]]);

    // Assert
    expect(tooFew).toThrow(/cover 9 values but the vector has 10/);
    expect(tooMany).toThrow(/cover 11 values but the vector has 10/);
  });

  it("concat undoes splitByShapes", () => {
    // Prepare
    const v = randomVector(257, 1, 41);
    const parts = splitByShapes(v, [[30, 8], [8], [8, 1], [1]]);

    // Execute
    const joined = concat(parts);

    // Assert
    expect(joined).not.toBe(v);
    expect(Array.from(joined)).toEqual(Array.from(v));
  });
});
