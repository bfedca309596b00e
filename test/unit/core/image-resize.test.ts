import { describe, expect, it } from "vitest";
import { axisTaps, resize } from "../../../src/core/image/resize";

describe("resize", () => {
  it("is the identity at the same size", () => {
    const src = Float32Array.from({ length: 3 * 4 * 2 }, (_, i) => i / 24);
    expect(Array.from(resize(src, 3, 4, 2, 3, 4))).toEqual(Array.from(src));
  });

  it("averages areas when shrinking by a whole factor: 4×4 → 2×2 is the mean of each 2×2 block", () => {
    // Prepare
    const src = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    // Execute
    const out = resize(src, 4, 4, 1, 2, 2);
    // Assert
    expect(Array.from(out)).toEqual([
      (1 + 2 + 5 + 6) / 4,
      (3 + 4 + 7 + 8) / 4,
      (9 + 10 + 13 + 14) / 4,
      (11 + 12 + 15 + 16) / 4,
    ]);
  });

  it("weights partly covered pixels when shrinking by a fraction: 3 → 2 takes 2/3 and 1/3", () => {
    const out = resize(Float32Array.from([3, 6, 9]), 1, 3, 1, 1, 2);
    expect(out[0]).toBeCloseTo((3 * 1 + 6 * 0.5) / 1.5, 6);
    expect(out[1]).toBeCloseTo((6 * 0.5 + 9 * 1) / 1.5, 6);
  });

  it("keeps the mean when shrinking", () => {
    const src = Float32Array.from({ length: 60 * 45 }, (_, i) => ((i * 7919) % 1000) / 1000);
    const out = resize(src, 45, 60, 1, 9, 20);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(out)).toBeCloseTo(mean(src), 5);
  });

  it("interpolates bilinearly with half-pixel centres when growing: [0, 1] → [0, 0.25, 0.75, 1]", () => {
    expect(Array.from(resize(Float32Array.from([0, 1]), 1, 2, 1, 1, 4))).toEqual([0, 0.25, 0.75, 1]);
    // 2 → 3: centres at input positions -1/6, 1/2, 7/6, clamped to the edges.
    expect(Array.from(resize(Float32Array.from([0, 1]), 2, 1, 1, 3, 1))).toEqual([0, 0.5, 1]);
  });

  it("decides per axis and keeps channels apart", () => {
    // 4 rows shrink to 2 (average), 2 columns grow to 4 (interpolate); channel 1 is channel 0 times 10.
    const src = new Float32Array(4 * 2 * 2);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 2; x++) {
        src[(y * 2 + x) * 2] = y + x;
        src[(y * 2 + x) * 2 + 1] = 10 * (y + x);
      }
    }
    const out = resize(src, 4, 2, 2, 2, 4);
    const c0 = Array.from(out.filter((_, i) => i % 2 === 0));
    const c1 = Array.from(out.filter((_, i) => i % 2 === 1));
    expect(c0).toEqual([0.5, 0.75, 1.25, 1.5, 2.5, 2.75, 3.25, 3.5]);
    c1.forEach((v, i) => {
      expect(v).toBeCloseTo(10 * (c0[i] as number), 5);
    });
  });

  it("has taps whose weights sum to 1 for every output, growing or shrinking", () => {
    for (const [from, to] of [
      [512, 64],
      [100, 64],
      [7, 3],
      [3, 7],
      [64, 224],
    ] as const) {
      const taps = axisTaps(from, to);
      for (let j = 0; j < to; j++) {
        let sum = 0;
        for (let k = taps.start[j] as number; k < (taps.start[j + 1] as number); k++) {
          sum += taps.weight[k] as number;
          expect(taps.index[k]).toBeGreaterThanOrEqual(0);
          expect(taps.index[k]).toBeLessThan(from);
        }
        expect(sum).toBeCloseTo(1, 12);
      }
    }
  });

  it("is deterministic and refuses a buffer of the wrong size", () => {
    const src = Float32Array.from({ length: 33 * 17 * 3 }, (_, i) => Math.sin(i) * 0.5 + 0.5);
    expect(Array.from(resize(src, 33, 17, 3, 10, 13))).toEqual(Array.from(resize(src, 33, 17, 3, 10, 13)));
    expect(() => resize(src, 33, 17, 1, 10, 13)).toThrow(/not 33×17×1/);
  });
});
