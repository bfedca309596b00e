import { describe, expect, it } from "vitest";
import { CryptoRandom } from "../../../src/core/random";
import { FedAvgUnweighted, type FitResult } from "../../../src/core/strategy";
import { float32Bits, seededFill } from "./support";

function randomVector(length: number, scale: number, rng: CryptoRandom): Float32Array {
  return Float32Array.from({ length }, () => ((rng.uint32() + 0.5) / 2 ** 32 - 0.5) * 2 * scale);
}

/** next = global + (1/K) sum_k delta_k, summed in float64 in site order, rounded to float32 once. */
function expectedNext(global: Float32Array, deltas: Float32Array[]): Float32Array {
  return Float32Array.from(global, (g, i) => {
    let sum = 0;
    for (const d of deltas) sum += d[i] as number;
    return g + sum / deltas.length;
  });
}

describe("FedAvgUnweighted", () => {
  it("computes global + mean(deltas) in float64, rounded to float32 once (5 sites, 1000 weights, seeded)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(2024));
    const global = randomVector(1000, 0.5, rng);
    const results: FitResult[] = [0.01, 0.3, 2, 0.07, 1e-4].map((scale, k) => ({
      siteId: `site-${k}`,
      delta: randomVector(1000, scale, rng),
      numExamples: 10 * (k + 1),
    }));

    // Execute
    const { parameters } = new FedAvgUnweighted().aggregateFit(3, global, results, []);

    // Assert
    const expected = expectedNext(
      global,
      results.map((r) => r.delta),
    );
    expect(float32Bits(parameters)).toEqual(float32Bits(expected));
  });

  it("keeps small deltas that a float32 running sum would lose", () => {
    // Prepare: in float32, 1 + 2^-30 - 1 = 0; in float64 it is 2^-30, and the mean 2^-30 / 3 survives
    const global = Float32Array.of(0, 1);
    const results: FitResult[] = [
      { siteId: "a", delta: Float32Array.of(1, 2 ** -20), numExamples: 1 },
      { siteId: "b", delta: Float32Array.of(2 ** -30, 2 ** -20), numExamples: 1 },
      { siteId: "c", delta: Float32Array.of(-1, 2 ** -20), numExamples: 1 },
    ];

    // Execute
    const { parameters } = new FedAvgUnweighted().aggregateFit(1, global, results, []);

    // Assert: the second weight is 1 + 2^-20 exactly (representable in float32)
    expect(parameters[0]).toBe(Math.fround(2 ** -30 / 3));
    expect(parameters[0]).not.toBe(0);
    expect(parameters[1]).toBe(1 + 2 ** -20);
  });

  it("ignores numExamples when averaging (unweighted on purpose)", () => {
    // Prepare
    const global = Float32Array.of(1, 2, 3);
    const deltas = [Float32Array.of(0.5, -1, 2), Float32Array.of(-0.25, 3, 0)];
    const few = deltas.map((delta, k) => ({ siteId: `s${k}`, delta, numExamples: 1 }));
    const many = deltas.map((delta, k) => ({ siteId: `s${k}`, delta, numExamples: k === 0 ? 1 : 100000 }));

    // Execute
    const a = new FedAvgUnweighted().aggregateFit(1, global, few, []).parameters;
    const b = new FedAvgUnweighted().aggregateFit(1, global, many, []).parameters;

    // Assert
    expect(Array.from(a)).toEqual([1.125, 3, 4]);
    expect(float32Bits(b)).toEqual(float32Bits(a));
  });

  it("leaves its inputs untouched", () => {
    // Prepare
    const global = Float32Array.of(1, 2);
    const delta = Float32Array.of(0.5, 0.5);

    // Execute
    const { parameters } = new FedAvgUnweighted().aggregateFit(
      1,
      global,
      [{ siteId: "a", delta, numExamples: 3 }],
      [],
    );

    // Assert
    expect(Array.from(global)).toEqual([1, 2]);
    expect(Array.from(delta)).toEqual([0.5, 0.5]);
    expect(parameters).not.toBe(global);
    expect(Array.from(parameters)).toEqual([1.5, 2.5]);
  });

  it("counts sites, failures and examples in its metrics", () => {
    // Prepare
    const global = new Float32Array(4);
    const results: FitResult[] = [
      { siteId: "a", delta: new Float32Array(4), numExamples: 120 },
      { siteId: "b", delta: new Float32Array(4), numExamples: 0 },
      { siteId: "c", delta: new Float32Array(4), numExamples: 37 },
    ];
    const failures = [
      { siteId: "d", reason: "timed out" },
      { siteId: "e", reason: "refused the plan" },
    ];

    // Execute
    const { metrics } = new FedAvgUnweighted().aggregateFit(2, global, results, failures);

    // Assert
    expect(metrics).toEqual({ sites: 3, failures: 2, numExamples: 157 });
  });

  it("refuses a delta whose length differs from the model's, naming the round and the site", () => {
    // Prepare
    const global = new Float32Array(257);
    const results: FitResult[] = [
      { siteId: "good", delta: new Float32Array(257), numExamples: 1 },
      { siteId: "st-olaf", delta: new Float32Array(256), numExamples: 1 },
    ];

    // Execute
    const execute = () => new FedAvgUnweighted().aggregateFit(4, global, results, []);

    // Assert
    expect(execute).toThrow(RangeError);
    expect(execute).toThrow(/round 4, site st-olaf: .*\(256 and 257\)/);
  });

  it("refuses a round with no results", () => {
    // Prepare
    const global = new Float32Array(3);

    // Execute
    const execute = () =>
      new FedAvgUnweighted().aggregateFit(6, global, [], [{ siteId: "a", reason: "offline" }]);

    // Assert
    expect(execute).toThrow(/round 6: no results/);
  });
});
