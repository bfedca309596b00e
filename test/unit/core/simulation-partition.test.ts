import { describe, expect, it } from "vitest";
import {
  dirichlet,
  holdoutSplit,
  labelSkew,
  partitionDirichlet,
  partitionIid,
  seededUniform,
} from "../../../src/core/simulation/partition";

/** WDBC's class balance: 212 malignant (1), 357 benign (0), in a fixed interleaved order. */
const LABELS = Array.from({ length: 569 }, (_, i) => ((i * 212) % 569 < 212 ? 1 : 0));

function expectExactCover(parts: number[][], n: number): void {
  const all = parts.flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
}

describe("seededUniform", () => {
  it("is deterministic per seed, differs across seeds, and stays in [0, 1) with mean near 1/2", () => {
    const a = seededUniform(7);
    const b = seededUniform(7);
    const c = seededUniform(8);
    const xs = Array.from({ length: 20_000 }, () => a());
    expect(Array.from({ length: 20_000 }, () => b())).toEqual(xs);
    expect(c()).not.toBe(xs[0]);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    // std of the mean of 20k uniforms is 0.002; 0.01 is 5 std.
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5)).toBeLessThan(0.01);
  });
});

describe("holdoutSplit", () => {
  it("holds out round(fraction * n) distinct examples and keeps the rest for training", () => {
    const { train, holdout } = holdoutSplit(569, 0.2, seededUniform(3));
    expect(holdout).toHaveLength(114);
    expect(train).toHaveLength(455);
    expectExactCover([train, holdout], 569);
    expect(holdoutSplit(569, 0.2, seededUniform(3)).holdout).toEqual(holdout);
    expect(() => holdoutSplit(10, 1, seededUniform(3))).toThrow(/strictly between 0 and 1/);
  });
});

describe("partitionIid", () => {
  it("deals every example exactly once into sites whose sizes differ by at most one", () => {
    const parts = partitionIid(455, 4, seededUniform(11));
    expectExactCover(parts, 455);
    expect(parts.map((p) => p.length)).toEqual([114, 114, 114, 113]);
  });

  it("is deterministic per seed and differs across seeds", () => {
    expect(partitionIid(100, 3, seededUniform(5))).toEqual(partitionIid(100, 3, seededUniform(5)));
    expect(partitionIid(100, 3, seededUniform(5))).not.toEqual(partitionIid(100, 3, seededUniform(6)));
  });

  it("keeps each site's label mix close to the pool's", () => {
    expect(labelSkew(LABELS, partitionIid(569, 3, seededUniform(1)))).toBeLessThan(0.06);
  });

  it("refuses more sites than examples", () => {
    expect(() => partitionIid(2, 3, seededUniform(1))).toThrow(/2 examples cannot be split over 3 sites/);
  });
});

describe("dirichlet", () => {
  it("draws probability vectors whose mean matches alpha / sum(alpha) (alpha = [0.6, 1.4], 4000 draws)", () => {
    const uniform = seededUniform(21);
    const draws = Array.from({ length: 4000 }, () => dirichlet([0.6, 1.4], uniform));
    for (const d of draws) expect((d[0] as number) + (d[1] as number)).toBeCloseTo(1, 12);
    // Beta(0.6, 1.4) has mean 0.3 and std sqrt(0.3 * 0.7 / 3) = 0.26; 4000 draws: std of mean 0.0042.
    const mean = draws.reduce((s, d) => s + (d[0] as number), 0) / draws.length;
    expect(Math.abs(mean - 0.3)).toBeLessThan(0.02);
  });

  it("stays a probability vector for tiny concentrations (no underflow to 0/0)", () => {
    const d = dirichlet([1e-3, 1e-3], seededUniform(2));
    expect(d.every(Number.isFinite)).toBe(true);
    expect((d[0] as number) + (d[1] as number)).toBeCloseTo(1, 12);
  });
});

describe("partitionDirichlet (Hsu et al. 2019)", () => {
  it("uses every example once and gives sites equal sizes (±1)", () => {
    for (const alpha of [0.05, 0.5, 100]) {
      const parts = partitionDirichlet(LABELS, 5, alpha, seededUniform(9));
      expectExactCover(parts, 569);
      const sizes = parts.map((p) => p.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it("skews labels measurably more for small alpha than for large alpha, and more than IID", () => {
    const skew = (alpha: number) => {
      let sum = 0;
      for (let seed = 1; seed <= 10; seed++) {
        sum += labelSkew(LABELS, partitionDirichlet(LABELS, 4, alpha, seededUniform(seed)));
      }
      return sum / 10;
    };
    const strong = skew(0.1);
    const mild = skew(1);
    const weak = skew(100);
    expect(strong).toBeGreaterThan(mild);
    expect(mild).toBeGreaterThan(weak);
    // With alpha = 0.1 most sites are mostly one class; at alpha = 100 they look like the pool.
    expect(strong).toBeGreaterThan(0.2);
    expect(weak).toBeLessThan(0.08);
  });

  it("is deterministic per seed and differs across seeds", () => {
    const a = partitionDirichlet(LABELS, 3, 0.5, seededUniform(4));
    expect(partitionDirichlet(LABELS, 3, 0.5, seededUniform(4))).toEqual(a);
    expect(partitionDirichlet(LABELS, 3, 0.5, seededUniform(5))).not.toEqual(a);
  });

  it("refuses a concentration that is not above 0", () => {
    expect(() => partitionDirichlet(LABELS, 3, 0, seededUniform(1))).toThrow(
      /alpha must be a number above 0/,
    );
  });
});
