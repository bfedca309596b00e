import { describe, expect, it } from "vitest";
import { canonicalJson, parsePlan } from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import {
  ADAPTIVE_DEFAULTS,
  addProximalTerm,
  addToSum,
  decodeStrategyState,
  describeAggregation,
  emptySum,
  encodeStrategyState,
  FedAdagrad,
  FedAdam,
  FedAvgM,
  FedAvgUnweighted,
  FedAvgWeighted,
  type FederatedStrategy,
  FedMedian,
  FedTrimmedMean,
  FedYogi,
  type FitFailure,
  type FitResult,
  proximalPenalty,
  STRATEGY_NAMES,
  type StrategyState,
  StrategyStateError,
  strategyFor,
  trimCount,
} from "../../../src/core/strategy";
import { demoPlanJson, float32Bits, seededFill } from "./support";

const f32 = Math.fround;

/** Results from plain arrays: site s0, s1, … with the given deltas and example counts (1 unless given). */
function results(deltas: number[][], numExamples: number[] = []): FitResult[] {
  return deltas.map((d, k) => ({
    siteId: `s${k}`,
    delta: Float32Array.from(d),
    numExamples: numExamples[k] ?? 1,
  }));
}

function randomVector(length: number, scale: number, rng: CryptoRandom): Float32Array {
  return Float32Array.from({ length }, () => ((rng.uint32() + 0.5) / 2 ** 32 - 0.5) * 2 * scale);
}

function allStrategies(): FederatedStrategy[] {
  return [
    new FedAvgUnweighted(),
    new FedAvgWeighted(),
    new FedAvgM(),
    new FedAdam(),
    new FedYogi(),
    new FedAdagrad(),
    new FedMedian(),
    new FedTrimmedMean(),
  ];
}

describe("FedAvg, weighted and unweighted", () => {
  it("averages unweighted by default and by examples when weighted, so they differ when the counts do", () => {
    // Prepare: site 0 has 1 example and delta 1, site 1 has 3 examples and delta 4
    const global = Float32Array.of(10, 0);
    const rs = results(
      [
        [1, -2],
        [4, 2],
      ],
      [1, 3],
    );

    // Execute
    const unweighted = new FedAvgUnweighted().aggregateFit(1, global, rs, []);
    const weighted = new FedAvgWeighted().aggregateFit(1, global, rs, []);

    // Assert: (1 + 4) / 2 = 2.5 and (-2 + 2) / 2 = 0; (1·1 + 3·4) / 4 = 3.25 and (1·-2 + 3·2) / 4 = 1
    expect(Array.from(unweighted.parameters)).toEqual([12.5, 0]);
    expect(Array.from(weighted.parameters)).toEqual([13.25, 1]);
    expect(weighted.metrics).toEqual({ sites: 2, failures: 0, numExamples: 4 });
  });

  it("gives the same model weighted and unweighted when every site has the same count", () => {
    // Prepare
    const global = Float32Array.of(1, 2, 3);
    const rs = results(
      [
        [0.5, -1, 2],
        [-0.25, 3, 0],
        [1, 1, 1],
      ],
      [7, 7, 7],
    );

    // Execute
    const a = new FedAvgUnweighted().aggregateFit(2, global, rs, []).parameters;
    const b = new FedAvgWeighted().aggregateFit(2, global, rs, []).parameters;

    // Assert
    expect(Array.from(b)).toEqual(Array.from(a).map((x) => expect.closeTo(x, 6)));
  });

  it("refuses to weight when every site reports 0 examples (as sites do today), with a clear error, not NaN", () => {
    // Prepare
    const rs = results([[1], [2]], [0, 0]);

    // Execute
    const execute = () => new FedAvgWeighted().aggregateFit(3, Float32Array.of(0), rs, []);

    // Assert
    expect(execute).toThrow(
      /round 3: the example-weighted mean has no weight: all 2 result\(s\) report numExamples = 0/,
    );
  });

  it("refuses a count that is not a whole number of examples", () => {
    for (const bad of [-1, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      // Prepare
      const rs = results([[1]], [bad]);

      // Execute
      const execute = () => new FedAvgWeighted().aggregateFit(1, Float32Array.of(0), rs, []);

      // Assert
      expect(execute).toThrow(/round 1, site s0: numExamples is .* not a count of examples/);
    }
  });

  it("gives the same bits from a running sum as from every update (incremental aggregation)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(77));
    const global = randomVector(300, 0.5, rng);
    const rs = [0.1, 2, 0.03, 0.7].map((scale, k) => ({
      siteId: `site-${k}`,
      delta: randomVector(300, scale, rng),
      numExamples: 13 * k + 5,
    }));
    for (const strategy of [new FedAvgUnweighted(), new FedAvgWeighted(), new FedAdam(), new FedAvgM()]) {
      const sum = emptySum(global.length);
      for (const r of rs) addToSum(sum, r, strategy.weighted, 1);

      // Execute
      const fromSum = strategy.aggregateSum(1, global, sum, []);
      const fromAll = strategy.aggregateFit(1, global, rs, []);

      // Assert
      expect(float32Bits(fromSum.parameters)).toEqual(float32Bits(fromAll.parameters));
      expect(fromSum.metrics).toEqual(fromAll.metrics);
    }
  });
});

describe("FedAvgM (Hsu et al. 2019)", () => {
  it("steps along v_t = β v_{t-1} + Δ_t, by hand over two rounds", () => {
    // Prepare: η = 0.5, β = 0.5
    const strategy = new FedAvgM({ serverLearningRate: 0.5, momentum: 0.5 });
    const x0 = Float32Array.of(10, 10);

    // Execute: round 1, Δ1 = mean([1, -6], [3, -2]) = [2, -4]; round 2, Δ2 = [2, 2]
    const r1 = strategy.aggregateFit(
      1,
      x0,
      results([
        [1, -6],
        [3, -2],
      ]),
      [],
    );
    const r2 = strategy.aggregateFit(2, r1.parameters, results([[2, 2]]), [], r1.state);

    // Assert: v1 = [2, -4], x1 = x0 + 0.5 v1 = [11, 8]; v2 = 0.5 [2, -4] + [2, 2] = [3, 0], x2 = [12.5, 8]
    expect(Array.from(r1.state?.vectors.momentum ?? [])).toEqual([2, -4]);
    expect(Array.from(r1.parameters)).toEqual([11, 8]);
    expect(Array.from(r2.state?.vectors.momentum ?? [])).toEqual([3, 0]);
    expect(Array.from(r2.parameters)).toEqual([12.5, 8]);
    expect(r2.state?.rounds).toBe(2);
  });

  it("is FedAvg in its first round when η = 1 (v_0 = 0)", () => {
    // Prepare
    const global = Float32Array.of(0.25, -3);
    const rs = results([
      [0.5, 1],
      [1.5, -2],
    ]);

    // Execute
    const momentum = new FedAvgM({ serverLearningRate: 1, momentum: 0.9 }).aggregateFit(1, global, rs, []);
    const plain = new FedAvgUnweighted().aggregateFit(1, global, rs, []);

    // Assert
    expect(float32Bits(momentum.parameters)).toEqual(float32Bits(plain.parameters));
  });
});

describe("FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021, Alg. 2)", () => {
  it("FedAdam, by hand over two rounds (η 1, β1 0.5, β2 0.5, τ 1, so v_{-1} = 1)", () => {
    // Prepare
    const strategy = new FedAdam({ serverLearningRate: 1, beta1: 0.5, beta2: 0.5, tau: 1 });
    const x0 = Float32Array.of(10, 10);

    // Execute: Δ1 = mean([6, 0], [8, -2]) = [7, -1]; Δ2 = [5, 7]
    const r1 = strategy.aggregateFit(
      1,
      x0,
      results([
        [6, 0],
        [8, -2],
      ]),
      [],
    );
    const r2 = strategy.aggregateFit(2, r1.parameters, results([[5, 7]]), [], r1.state);

    // Assert, round 1: m1 = 0.5 Δ1 = [3.5, -0.5]; v1 = 0.5·1 + 0.5 Δ1² = [25, 1];
    // x1 = x0 + m1 / (√v1 + 1) = [10 + 3.5/6, 10 - 0.5/2]
    expect(Array.from(r1.state?.vectors.m ?? [])).toEqual([3.5, -0.5]);
    expect(Array.from(r1.state?.vectors.v ?? [])).toEqual([25, 1]);
    expect(Array.from(r1.parameters)).toEqual([f32(10 + 7 / 12), 9.75]);
    // Round 2: m2 = 0.5 m1 + 0.5 Δ2 = [4.25, 3.25]; v2 = 0.5 v1 + 0.5 Δ2² = [25, 25];
    // x2 = x1 + m2 / (5 + 1) = [x1 + 17/24, 9.75 + 13/24]
    expect(Array.from(r2.state?.vectors.m ?? [])).toEqual([4.25, 3.25]);
    expect(Array.from(r2.state?.vectors.v ?? [])).toEqual([25, 25]);
    expect(r2.parameters[0]).toBe(f32(f32(10 + 7 / 12) + 17 / 24));
    expect(r2.parameters[1]).toBe(f32(9.75 + 13 / 24));
  });

  it("FedYogi, by hand over two rounds, including sign(v - Δ²) = 0, +1 and -1", () => {
    // Prepare
    const strategy = new FedYogi({ serverLearningRate: 1, beta1: 0.5, beta2: 0.5, tau: 1 });
    const x0 = Float32Array.of(10, 10);

    // Execute: Δ1 = [4, -1]; Δ2 = [0, 4]
    const r1 = strategy.aggregateFit(1, x0, results([[4, -1]]), []);
    const r2 = strategy.aggregateFit(2, r1.parameters, results([[0, 4]]), [], r1.state);

    // Assert, round 1: m1 = [2, -0.5]; v1 = 1 - 0.5·16·sign(1 - 16) = 9, and 1 - 0.5·1·sign(0) = 1;
    // x1 = [10 + 2/(3 + 1), 10 - 0.5/(1 + 1)] = [10.5, 9.75]
    expect(Array.from(r1.state?.vectors.m ?? [])).toEqual([2, -0.5]);
    expect(Array.from(r1.state?.vectors.v ?? [])).toEqual([9, 1]);
    expect(Array.from(r1.parameters)).toEqual([10.5, 9.75]);
    // Round 2: m2 = [1, 1.75]; v2 = 9 - 0.5·0·sign(9) = 9, and 1 - 0.5·16·sign(1 - 16) = 9;
    // x2 = [10.5 + 1/4, 9.75 + 1.75/4] = [10.75, 10.1875]
    expect(Array.from(r2.state?.vectors.m ?? [])).toEqual([1, 1.75]);
    expect(Array.from(r2.state?.vectors.v ?? [])).toEqual([9, 9]);
    expect(Array.from(r2.parameters)).toEqual([10.75, 10.1875]);
  });

  it("FedYogi shrinks v where Δ² is below it, where FedAdam's v would decay the same way only by β2", () => {
    // Prepare: v after round 1 is 9 (as above); Δ2 = 2, so Δ2² = 4 < 9
    const yogi = new FedYogi({ serverLearningRate: 1, beta1: 0.5, beta2: 0.5, tau: 1 });
    const r1 = yogi.aggregateFit(1, Float32Array.of(0), results([[4]]), []);

    // Execute
    const r2 = yogi.aggregateFit(2, r1.parameters, results([[2]]), [], r1.state);

    // Assert: Yogi v2 = 9 - 0.5·4·sign(9 - 4) = 7 (Adam would give 0.5·9 + 0.5·4 = 6.5)
    expect(Array.from(r2.state?.vectors.v ?? [])).toEqual([7]);
  });

  it("FedAdagrad, by hand over two rounds (η 1, β1 0 by default, τ 3/4, so v_{-1} = 9/16)", () => {
    // Prepare
    const strategy = new FedAdagrad({ serverLearningRate: 1, tau: 0.75 });
    const x0 = Float32Array.of(10, 10);

    // Execute: Δ1 = [1, -1]; Δ2 = [15/16, 0]
    const r1 = strategy.aggregateFit(1, x0, results([[1, -1]]), []);
    const r2 = strategy.aggregateFit(2, r1.parameters, results([[15 / 16, 0]]), [], r1.state);

    // Assert, round 1: m1 = Δ1; v1 = 9/16 + 1 = 25/16; x1 = x0 + Δ1 / (5/4 + 3/4) = [10.5, 9.5]
    expect(strategy.settings).toEqual({ serverLearningRate: 1, beta1: 0, tau: 0.75 });
    expect(Array.from(r1.state?.vectors.v ?? [])).toEqual([25 / 16, 25 / 16]);
    expect(Array.from(r1.parameters)).toEqual([10.5, 9.5]);
    // Round 2: v2 = 25/16 + 225/256 = 625/256 (√ = 25/16); x2 = [10.5 + (15/16)/(25/16 + 12/16), 9.5]
    expect(Array.from(r2.state?.vectors.v ?? [])).toEqual([625 / 256, 25 / 16]);
    expect(r2.parameters[0]).toBe(f32(10.5 + 15 / 37));
    expect(r2.parameters[1]).toBe(9.5);
  });

  it("uses the paper's β1 0.9, β2 0.99 and τ 1e-3 by default, and η 1e-2 (first step by hand)", () => {
    // Prepare
    const strategy = new FedAdam();
    const x0 = Float32Array.of(0, 0);

    // Execute: Δ1 = [0.2, -0.1]
    const r1 = strategy.aggregateFit(1, x0, results([[0.2, -0.1]]), []);

    // Assert: m1 = 0.1 Δ1; v1 = 0.99·1e-6 + 0.01 Δ1²; step = 0.01 m1 / (√v1 + 1e-3)
    expect(strategy.settings).toEqual({ serverLearningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 0.001 });
    expect(r1.parameters[0]).toBeCloseTo(0.00951261, 7);
    expect(r1.parameters[1]).toBeCloseTo(-0.00905028, 7);
  });

  it("matches the formulas over three seeded rounds for each optimizer (float32 state, float64 arithmetic)", () => {
    const rng = new CryptoRandom(seededFill(31337));
    const d = 64;
    const x0 = randomVector(d, 1, rng);
    const rounds = [1, 2, 3].map(() => [0.3, 0.05, 1.2].map((scale) => randomVector(d, scale, rng)));
    const o = { serverLearningRate: 0.03, beta1: 0.8, beta2: 0.95, tau: 0.01 };
    const second = {
      fedadam: (v: number, g2: number) => o.beta2 * v + (1 - o.beta2) * g2,
      fedyogi: (v: number, g2: number) => v - (1 - o.beta2) * g2 * Math.sign(v - g2),
      fedadagrad: (v: number, g2: number) => v + g2,
    };
    for (const [name, strategy] of [
      ["fedadam", new FedAdam(o)],
      ["fedyogi", new FedYogi(o)],
      ["fedadagrad", new FedAdagrad(o)],
    ] as const) {
      // Prepare: the reference, written from Alg. 2 directly
      let x = x0;
      let m = new Float32Array(d);
      let v = new Float32Array(d).fill(o.tau * o.tau);
      let state: StrategyState | undefined;
      let got = x0;
      for (const [t, deltas] of rounds.entries()) {
        const next = new Float32Array(d);
        const m2 = new Float32Array(d);
        const v2 = new Float32Array(d);
        for (let i = 0; i < d; i++) {
          const delta = deltas.reduce((s, u) => s + (u[i] as number), 0) / deltas.length;
          const mi = o.beta1 * (m[i] as number) + (1 - o.beta1) * delta;
          const vi = second[name](v[i] as number, delta * delta);
          m2[i] = mi;
          v2[i] = vi;
          next[i] = (x[i] as number) + (o.serverLearningRate * mi) / (Math.sqrt(vi) + o.tau);
        }
        [x, m, v] = [next, m2, v2];

        // Execute
        const out = strategy.aggregateFit(t + 1, got, results(deltas.map((u) => Array.from(u))), [], state);
        got = out.parameters;
        state = out.state;
      }

      // Assert
      expect(float32Bits(got), name).toEqual(float32Bits(x));
      expect(float32Bits(state?.vectors.m ?? new Float32Array()), name).toEqual(float32Bits(m));
      expect(float32Bits(state?.vectors.v ?? new Float32Array()), name).toEqual(float32Bits(v));
    }
  });
});

describe("server state", () => {
  it("round-trips through its binary form bit for bit, and training resumes identically from it", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(5));
    const x0 = randomVector(50, 1, rng);
    const round = () => results([0.5, 0.1].map((s) => Array.from(randomVector(50, s, rng))));
    const [u1, u2] = [round(), round()];
    for (const make of [
      () => new FedAvgM(),
      () => new FedAdam(),
      () => new FedYogi(),
      () => new FedAdagrad(),
    ]) {
      const r1 = make().aggregateFit(1, x0, u1, []);
      const state = r1.state as StrategyState;

      // Execute: persist after round 1, as a restarted coordinator would, with a fresh instance
      const decoded = decodeStrategyState(encodeStrategyState(state), {
        strategy: state.strategy,
        count: 50,
      });
      const inMemory = make().aggregateFit(2, r1.parameters, u2, [], state);
      const restarted = make().aggregateFit(2, r1.parameters, u2, [], decoded);

      // Assert
      expect(decoded.strategy).toBe(state.strategy);
      expect(decoded.rounds).toBe(1);
      expect(Object.keys(decoded.vectors)).toEqual(Object.keys(state.vectors));
      for (const [name, vec] of Object.entries(state.vectors))
        expect(float32Bits(decoded.vectors[name] as Float32Array)).toEqual(float32Bits(vec));
      expect(float32Bits(restarted.parameters)).toEqual(float32Bits(inMemory.parameters));
    }
  });

  it("is absent for the stateless strategies, which ignore a state they are given", () => {
    for (const strategy of [
      new FedAvgUnweighted(),
      new FedAvgWeighted(),
      new FedMedian(),
      new FedTrimmedMean(),
    ]) {
      // Prepare
      const stray: StrategyState = { strategy: "fedadam", rounds: 4, vectors: {} };

      // Execute
      const out = strategy.aggregateFit(5, Float32Array.of(1), results([[1]]), [], stray);

      // Assert
      expect(strategy.stateful).toBe(false);
      expect(out.state).toBeUndefined();
      expect(Array.from(out.parameters)).toEqual([2]);
    }
  });

  it("refuses to restart an optimizer silently: no state after round 1, or a state of another strategy, round or size", () => {
    // Prepare
    const x = Float32Array.of(0, 0);
    const adam = new FedAdam();
    const state = adam.aggregateFit(1, x, results([[1, 1]]), []).state as StrategyState;

    // Execute / Assert
    expect(() => adam.aggregateFit(2, x, results([[1, 1]]), [])).toThrow(
      /fedadam keeps server state between rounds, and round 2 was given none/,
    );
    expect(() => new FedYogi().aggregateFit(2, x, results([[1, 1]]), [], state)).toThrow(
      /was written by fedadam/,
    );
    expect(() => adam.aggregateFit(3, x, results([[1, 1]]), [], state)).toThrow(
      /state after round 1, not after round 2/,
    );
    expect(() => adam.aggregateFit(2, Float32Array.of(0), results([[1]]), [], state)).toThrow(
      /of 1 weights each/,
    );
  });

  it("refuses a stored state that is damaged, from another strategy or for another model size", () => {
    // Prepare
    const state = new FedAvgM().aggregateFit(1, Float32Array.of(0, 0, 0), results([[1, 2, 3]]), []).state;
    const bytes = encodeStrategyState(state as StrategyState);
    const flipped = bytes.slice();
    flipped[0] = 0;
    const nan = bytes.slice();
    new DataView(nan.buffer).setFloat32(16, Number.NaN, true);

    // Execute / Assert
    expect(() => decodeStrategyState(flipped)).toThrow(StrategyStateError);
    expect(() => decodeStrategyState(bytes.subarray(0, bytes.length - 1))).toThrow(
      /need 28 bytes, it has 27/,
    );
    expect(() => decodeStrategyState(bytes, { strategy: "fedadam" })).toThrow(/written by fedavgm.*fedadam/);
    expect(() => decodeStrategyState(bytes, { count: 4 })).toThrow(/3 values, but the plan's model has 4/);
    expect(() => decodeStrategyState(nan)).toThrow(/not finite/);
    expect(() => encodeStrategyState({ strategy: "median", rounds: 1, vectors: {} })).toThrow(
      /keeps no server state/,
    );
  });
});

describe("coordinate-wise median and trimmed mean (Yin et al. 2018)", () => {
  it("takes the middle value of an odd count and the mean of the two middle ones of an even count", () => {
    // Prepare
    const global = Float32Array.of(0, 100);
    const odd = results([
      [3, -1],
      [1, 1000],
      [2, 5],
    ]);
    const even = results([
      [4, -1],
      [1, 1000],
      [3, 5],
      [2, 6],
    ]);

    // Execute
    const a = new FedMedian().aggregateFit(1, global, odd, []).parameters;
    const b = new FedMedian().aggregateFit(1, global, even, []).parameters;

    // Assert: median(3, 1, 2) = 2, median(-1, 1000, 5) = 5; median(4, 1, 3, 2) = 2.5, median(-1, 1000, 5, 6) = 5.5
    expect(Array.from(a)).toEqual([2, 105]);
    expect(Array.from(b)).toEqual([2.5, 105.5]);
  });

  it("trims floor(β k) values from each end", () => {
    // Execute / Assert
    expect(trimCount(10, 0.2)).toBe(2);
    expect(trimCount(5, 0.2)).toBe(1);
    expect(trimCount(4, 0.2)).toBe(0);
    expect(trimCount(3, 0.49)).toBe(1);
    expect(trimCount(100, 0.29)).toBe(29); // 0.29 × 100 is 28.999999999999996 in binary
    expect(() => trimCount(10, 0.5)).toThrow(/below 0.5/);
    expect(() => new FedTrimmedMean({ trimFraction: -0.1 })).toThrow(/at least 0/);
  });

  it("averages what is left after trimming, per coordinate", () => {
    // Prepare: 5 sites, β = 0.2 → one value off each end
    const global = Float32Array.of(0, 0);
    const rs = results([
      [1, -50],
      [2, 1],
      [3, 2],
      [4, 3],
      [100, 4],
    ]);

    // Execute
    const out = new FedTrimmedMean({ trimFraction: 0.2 }).aggregateFit(1, global, rs, []);

    // Assert: mean(2, 3, 4) = 3 and mean(1, 2, 3) = 2
    expect(Array.from(out.parameters)).toEqual([3, 2]);
    expect(out.metrics).toEqual({ sites: 5, failures: 0, numExamples: 5, trimmedPerSide: 1 });
  });

  it("needs every update: a running sum is refused", () => {
    for (const strategy of [new FedMedian(), new FedTrimmedMean()]) {
      // Prepare
      const sum = emptySum(1);
      addToSum(sum, { siteId: "a", delta: Float32Array.of(1), numExamples: 0 }, false, 1);

      // Execute / Assert
      expect(strategy.needsEveryUpdate).toBe(true);
      expect(() => strategy.aggregateSum(1, Float32Array.of(0), sum, [])).toThrow(
        /cannot aggregate a running sum/,
      );
    }
    for (const strategy of [new FedAvgUnweighted(), new FedAdam()])
      expect(strategy.needsEveryUpdate).toBe(false);
  });
});

describe("every strategy", () => {
  const failures: FitFailure[] = [
    { siteId: "late", reason: "arrived after the deadline" },
    { siteId: "refused", reason: "" },
    { siteId: "revoked", reason: "the site's token was revoked" },
  ];

  it("counts failures as data and aggregates the results it has", () => {
    for (const strategy of allStrategies()) {
      // Execute
      const out = strategy.aggregateFit(1, Float32Array.of(1, 1), results([[1, -1]], [4]), failures);

      // Assert
      expect(out.metrics.failures, strategy.name).toBe(3);
      expect(out.metrics.sites, strategy.name).toBe(1);
      expect(Array.from(out.parameters).every(Number.isFinite), strategy.name).toBe(true);
    }
  });

  it("refuses a round with no results with a clear error, never a NaN model", () => {
    for (const strategy of allStrategies()) {
      // Execute
      const execute = () => strategy.aggregateFit(2, Float32Array.of(1), [], failures, undefined);
      const fromSum = () => strategy.aggregateSum(2, Float32Array.of(1), emptySum(1), failures);

      // Assert
      expect(execute, strategy.name).toThrow(/round 2: no results to aggregate \(3 site\(s\) failed\)/);
      if (!strategy.needsEveryUpdate) expect(fromSum, strategy.name).toThrow(/round 2: no results/);
    }
  });

  it("refuses an update of the wrong length, naming the round and the site", () => {
    for (const strategy of allStrategies()) {
      // Prepare
      const rs = [...results([[1, 2]]), { siteId: "st-olaf", delta: Float32Array.of(1), numExamples: 1 }];

      // Execute / Assert
      expect(() => strategy.aggregateFit(4, Float32Array.of(0, 0), rs, []), strategy.name).toThrow(
        /round 4, site st-olaf: .*\(1 and 2\)/,
      );
    }
  });

  it("leaves its inputs untouched", () => {
    for (const strategy of allStrategies()) {
      // Prepare
      const global = Float32Array.of(1, 2);
      const rs = results(
        [
          [0.5, 0.5],
          [1, -1],
        ],
        [2, 3],
      );

      // Execute
      const out = strategy.aggregateFit(1, global, rs, []);

      // Assert
      expect(Array.from(global)).toEqual([1, 2]);
      expect(Array.from(rs[0]?.delta ?? [])).toEqual([0.5, 0.5]);
      expect(out.parameters).not.toBe(global);
    }
  });

  it("sends FedProx's μ to the sites in configureFit, and nothing when the plan sets none", () => {
    // Prepare
    const parameters = Float32Array.of(1, 2);

    // Execute
    const withMu = new FedAdam({ proximalMu: 0.01 }).configureFit(3, parameters);
    const without = new FedAvgUnweighted().configureFit(3, parameters);

    // Assert
    expect(withMu).toEqual({ serverRound: 3, parameters, config: { proximalMu: 0.01 } });
    expect(without.config).toEqual({});
  });

  it("averages evaluations by held-out size, and gives no loss (not NaN) when none reported", () => {
    // Prepare
    const evaluations = [
      { siteId: "a", numExamples: 10, loss: 0.5, metrics: { accuracy: 0.9 } },
      { siteId: "b", numExamples: 30, loss: 0.1, metrics: { accuracy: 0.7 } },
      { siteId: "c", numExamples: 0, loss: 9, metrics: { accuracy: 0 } },
      { siteId: "d", numExamples: -5, loss: 9, metrics: { accuracy: 0 } },
      { siteId: "e", numExamples: 5, loss: Number.NaN, metrics: { accuracy: 0 } },
    ];

    // Execute
    const out = new FedYogi().aggregateEvaluate(2, evaluations, failures);
    const none = new FedMedian().aggregateEvaluate(2, [], failures);

    // Assert: d and e are left out; loss (10·0.5 + 30·0.1) / 40 = 0.2; accuracy (10·0.9 + 30·0.7) / 40 = 0.75
    expect(out.loss).toBeCloseTo(0.2, 12);
    expect(out.metrics).toEqual({
      sites: 5,
      failures: 3,
      numExamples: 40,
      accuracy: expect.closeTo(0.75, 12),
    });
    expect(none).toEqual({ loss: undefined, metrics: { sites: 0, failures: 3, numExamples: 0 } });
  });
});

describe("FedProx's proximal term (Li et al. 2020)", () => {
  it("adds μ (w − w_global) to the gradient, by hand", () => {
    // Prepare
    const grad = Float32Array.of(1, -2, 0.5);
    const w = Float32Array.of(3, 0, -1);
    const wGlobal = Float32Array.of(1, 1, -1);

    // Execute
    const out = addProximalTerm(grad, w, wGlobal, 0.5);

    // Assert: [1 + 0.5·2, -2 + 0.5·-1, 0.5 + 0] and (μ/2)‖w − w_g‖² = 0.25·(4 + 1) = 1.25
    expect(Array.from(out)).toEqual([2, -2.5, 0.5]);
    expect(Array.from(grad)).toEqual([1, -2, 0.5]);
    expect(proximalPenalty(w, wGlobal, 0.5)).toBe(1.25);
  });

  it("can update the gradient in place, and refuses a negative μ or mismatched lengths", () => {
    // Prepare
    const grad = Float32Array.of(1, 1);

    // Execute
    const out = addProximalTerm(grad, Float32Array.of(2, 0), Float32Array.of(0, 0), 0.25, grad);

    // Assert
    expect(out).toBe(grad);
    expect(Array.from(grad)).toEqual([1.5, 1]);
    expect(() => addProximalTerm(grad, grad, grad, -1)).toThrow(/0 or more/);
    expect(() => addProximalTerm(grad, Float32Array.of(1), grad, 1)).toThrow(/different lengths/);
  });
});

describe("strategyFor and the plan's aggregation field", () => {
  const plan = (aggregation?: Record<string, unknown>) =>
    parsePlan(aggregation ? { ...demoPlanJson(), aggregation } : demoPlanJson());

  it("gives unweighted FedAvg when the plan has no aggregation field, which stays out of the plan's JSON", () => {
    // Execute
    const p = plan();
    const strategy = strategyFor(p);

    // Assert
    expect(strategy).toBeInstanceOf(FedAvgUnweighted);
    expect(strategy.weighted).toBe(false);
    expect("aggregation" in p).toBe(false);
    expect(canonicalJson(p)).not.toContain("aggregation");
  });

  it("builds each named strategy with the plan's settings and the defaults for the rest", () => {
    for (const name of STRATEGY_NAMES) expect(strategyFor(plan({ strategy: name })).name).toBe(name);
    expect(strategyFor(plan({ strategy: "fedadam", beta2: 0.9 })).settings).toEqual({
      ...ADAPTIVE_DEFAULTS,
      beta2: 0.9,
    });
    expect(strategyFor(plan({ strategy: "fedavgm", momentum: 0.5 })).settings).toEqual({
      serverLearningRate: 1,
      momentum: 0.5,
    });
    expect(strategyFor(plan({ strategy: "trimmed-mean", trimFraction: 0.1 })).settings).toEqual({
      trimFraction: 0.1,
    });
    expect(
      strategyFor(plan({ strategy: "fedavg", proximalMu: 0.01 })).configureFit(1, new Float32Array()).config,
    ).toEqual({
      proximalMu: 0.01,
    });
  });

  it("refuses a setting the strategy does not use, and out-of-range values, naming the field", () => {
    expect(() => plan({ strategy: "fedadam", momentum: 0.9 })).toThrow(
      /aggregation\.momentum: is not used by the "fedadam" strategy, only by "fedavgm"/,
    );
    expect(() => plan({ strategy: "fedadagrad", beta2: 0.9 })).toThrow(/aggregation\.beta2: is not used/);
    expect(() => plan({ strategy: "median", trimFraction: 0.1 })).toThrow(/aggregation\.trimFraction/);
    expect(() => plan({ strategy: "trimmed-mean", trimFraction: 0.5 })).toThrow(/aggregation\.trimFraction/);
    expect(() => plan({ strategy: "fedyogi", tau: 0 })).toThrow(/aggregation\.tau/);
    expect(() => plan({ strategy: "krum" })).toThrow(/aggregation\.strategy/);
    expect(() => plan({ strategy: "fedavg", weighted: true })).toThrow(/aggregation/);
  });

  it("tells the site in the plan view what weighting and robust aggregation disclose", () => {
    // Execute
    const weighted = describeAggregation(plan({ strategy: "fedavg-weighted" })).join(" ");
    const plain = describeAggregation(plan()).join(" ");
    const median = describeAggregation(plan({ strategy: "median", proximalMu: 0.1 })).join(" ");

    // Assert
    expect(weighted).toMatch(/coordinator learns the size of your training set/);
    expect(plain).toMatch(/does not send its number of training examples/);
    expect(median).toMatch(/cannot be combined with secure aggregation/);
    expect(median).toMatch(/0\.1 × \(w − w_global\)/);
  });
});
