import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { InputError } from "../../../src/core/errors";
import { createOptimizer } from "../../../src/core/optim";
import { type Plan, paramCount, parsePlan } from "../../../src/core/plan";
import {
  dpSgdGrid,
  dpSgdSchedule,
  maxDpSgdDeltaNorm,
  noiseClippedSum,
} from "../../../src/core/privacy/dp-sgd";
import { poissonSample } from "../../../src/core/privacy/poisson";
import { CryptoRandom } from "../../../src/core/random";
import { l2Norm } from "../../../src/core/vector";
import { meanAndVariance, scriptedFill, seededFill } from "./support";

type Json = Record<string, unknown>;

/** The WDBC demo plan as it was before DP-SGD (site-update). */
function siteUpdatePlanJson(): Json {
  return JSON.parse(readFileSync("test/fixtures/plans/wdbc-site-update.json", "utf8")) as Json;
}

/** A dp-sgd plan over the WDBC features (30 -> 8 -> 1, 257 weights). */
function dpPlan(privacy: Json = {}, training: Json = {}, extra: Json = {}): Plan {
  const raw = siteUpdatePlanJson();
  return parsePlan({
    ...raw,
    csv: undefined,
    training: { optimizer: "sgd", learningRate: 0.5, ...training },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1.5,
      noiseMultiplier: 1.2,
      delta: 1e-5,
      epsilonBudget: 3,
      stepsPerRound: 10,
      expectedBatchSize: 20,
      ...privacy,
    },
    ...extra,
  });
}

function inputErrorOf(f: () => unknown): InputError {
  try {
    f();
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error("no InputError was thrown");
}

describe("dpSgdGrid", () => {
  it.each([
    [1, 1, 257],
    [0.7, 1.3, 257],
    [2, 0.5, 9505],
    [1, 8, 10],
    [0.1, 3, 1],
    [1, 1.1, 100_000],
  ])(
    "C = %s, z = %s, d = %s: the largest power of two with sigma/g >= 2^10 and g sqrt(d) <= C/64",
    (C, z, d) => {
      // Execute
      const { grid, gridExponent, sigma, effectiveClip } = dpSgdGrid({ clipNorm: C, noiseMultiplier: z }, d);

      // Assert
      expect(grid).toBe(2 ** gridExponent);
      expect(sigma).toBe(z * C);
      expect(sigma / grid).toBeGreaterThanOrEqual(2 ** 10);
      expect(grid * Math.sqrt(d)).toBeLessThanOrEqual(C / 64);
      // the next power of two up breaks one of the two
      const up = 2 * grid;
      expect(sigma / up < 2 ** 10 || up * Math.sqrt(d) > C / 64).toBe(true);
      expect(effectiveClip).toBe(C - grid * Math.sqrt(d));
      expect(effectiveClip).toBeGreaterThanOrEqual((63 / 64) * C);
    },
  );

  it("uses the finest grid the table serves for a large model, clipping at least 3C/4", () => {
    // Execute: z sqrt(d) = 5.2 * 1000 would need sigma/g near 2^19 for g sqrt(d) <= C/64
    const { grid, sigma, effectiveClip } = dpSgdGrid({ clipNorm: 1.5, noiseMultiplier: 5.2 }, 1_000_000);

    // Assert
    expect(sigma / grid).toBeLessThan(2 ** 16);
    expect(sigma / grid).toBeGreaterThanOrEqual(2 ** 15);
    expect(grid * 1000).toBeGreaterThan(1.5 / 64);
    expect(effectiveClip).toBe(1.5 - grid * 1000);
    expect(effectiveClip).toBeGreaterThanOrEqual(0.75 * 1.5);
  });

  it("refuses a grid whose rounding would take more than C/4, naming the plan fields", () => {
    expect(() => dpSgdGrid({ clipNorm: 1, noiseMultiplier: 50 }, 1_000_000)).toThrow(
      /privacy\.noiseMultiplier.*privacy\.clipNorm.*fewer weights/,
    );
    expect(() => dpSgdGrid({ clipNorm: 1, noiseMultiplier: 50 }, 1_000_000)).toThrow(RangeError);
  });

  it("keeps neighbouring sums within C after rounding (units clipped to effectiveClip, adversarial ties)", () => {
    // Prepare
    const d = 257;
    const C = 1.5;
    const { grid, effectiveClip } = dpSgdGrid({ clipNorm: C, noiseMultiplier: 1.2 }, d);
    const rng = new CryptoRandom(seededFill(31));
    const round = (v: Float64Array) => v.map((x) => Math.round(x / grid) * grid);
    let worst = 0;

    // Execute: S sits just below a half-grid tie in every coordinate, S + u just above it
    for (let trial = 0; trial < 200; trial++) {
      const u = Float64Array.from({ length: d }, () => rng.uint32() / 2 ** 32 - 0.5);
      const scale = effectiveClip / l2Norm(u);
      for (let i = 0; i < d; i++) u[i] = (u[i] as number) * scale;
      const s = Float64Array.from(u, (ui, i) => (i + 0.5) * grid - (ui > 0 ? 1e-9 * grid : -1e-9 * grid));
      const t = Float64Array.from(s, (si, i) => si + (u[i] as number));
      const a = round(s);
      const b = round(t);
      worst = Math.max(worst, l2Norm(a.map((x, i) => x - (b[i] as number))));
    }

    // Assert
    expect(worst).toBeLessThanOrEqual(C);
    expect(worst).toBeGreaterThan(effectiveClip);
  });
});

describe("noiseClippedSum", () => {
  it("adds noise of std z C, not z 2C nor its variance (z = 1.3, C = 0.7, 200000 seeded coordinates)", () => {
    // Prepare
    const z = 1.3;
    const C = 0.7;
    const d = 1000;
    const rng = new CryptoRandom(seededFill(41));
    const sum = Float32Array.from({ length: d }, (_, i) => Math.sin(i) * 3);
    const noise = new Float64Array(200 * d);

    // Execute
    let grid = 0;
    for (let r = 0; r < 200; r++) {
      const out = noiseClippedSum(sum, { clipNorm: C, noiseMultiplier: z }, rng);
      grid = out.grid;
      for (let i = 0; i < d; i++)
        noise[r * d + i] = (out.noised[i] as number) - Math.round((sum[i] as number) / grid) * grid;
    }

    // Assert: the sample std's standard error is sigma / sqrt(2n) = 0.16%; 1% is 6 of them
    const { mean, variance } = meanAndVariance(noise);
    expect(Math.sqrt(variance)).toBeGreaterThan(z * C * 0.99);
    expect(Math.sqrt(variance)).toBeLessThan(z * C * 1.01);
    expect(Math.abs(mean)).toBeLessThan((5 * z * C) / Math.sqrt(noise.length));
    expect(noise.every((x) => Number.isInteger(x / grid))).toBe(true);
  });

  it("rounds the sum to the grid within g/2 per coordinate (zero noise from an all-zero byte source)", () => {
    // Prepare: uniform words of 0 draw |X| = 0 from the table every time, leaving only the rounding
    const { fill } = scriptedFill([]);
    const rng = new CryptoRandom(fill);
    const d = 257;
    const sum = Float32Array.from({ length: d }, (_, i) => Math.cos(i * 0.37) * (1 + i / 50));

    // Execute
    const { noised, grid, sigma } = noiseClippedSum(sum, { clipNorm: 1.5, noiseMultiplier: 1.2 }, rng);

    // Assert
    expect(sigma).toBeCloseTo(1.8, 15);
    expect(grid).toBe(dpSgdGrid({ clipNorm: 1.5, noiseMultiplier: 1.2 }, d).grid);
    for (let i = 0; i < d; i++) {
      expect(Math.abs((noised[i] as number) - (sum[i] as number))).toBeLessThanOrEqual(grid / 2);
      expect(Number.isInteger((noised[i] as number) / grid)).toBe(true);
    }
    expect(noised).not.toBe(sum);
  });

  it("refuses a non-finite sum (diverged training) and never calls Math.random", () => {
    // Prepare
    const spy = vi.spyOn(Math, "random");
    const rng = new CryptoRandom(seededFill(1));

    // Execute and Assert
    expect(() =>
      noiseClippedSum(Float32Array.of(1, Number.NaN), { clipNorm: 1, noiseMultiplier: 1 }, rng),
    ).toThrow(InputError);
    noiseClippedSum(new Float32Array(100), { clipNorm: 1, noiseMultiplier: 1 }, rng);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });
});

describe("dpSgdSchedule", () => {
  it("takes q = B / N for an expected batch size and divides by B", () => {
    expect(dpSgdSchedule(dpPlan(), 80)).toEqual({ samplingRate: 0.25, expectedBatch: 20, steps: 10 });
    expect(dpSgdSchedule(dpPlan(), 20)).toEqual({ samplingRate: 1, expectedBatch: 20, steps: 10 });
  });

  it("takes the plan's sampling rate and q N for the expected batch", () => {
    const plan = dpPlan({ expectedBatchSize: undefined, samplingRate: 0.3 });
    expect(dpSgdSchedule(plan, 50)).toEqual({ samplingRate: 0.3, expectedBatch: 0.3 * 50, steps: 10 });
  });

  it("refuses an expected batch above N, naming privacy.expectedBatchSize and the unit", () => {
    // Execute
    const rows = inputErrorOf(() => dpSgdSchedule(dpPlan(), 19));
    const patients = inputErrorOf(() =>
      dpSgdSchedule(dpPlan({}, {}, { csv: { patientColumn: "patient" } }), 5),
    );

    // Assert
    expect(rows.message).toMatch(/privacy\.expectedBatchSize is 20, more than the 19 training rows/);
    expect(patients.message).toMatch(/more than the 5 training patients/);
  });

  it("refuses an expected batch below 1, naming privacy.samplingRate", () => {
    // Execute
    const error = inputErrorOf(() =>
      dpSgdSchedule(dpPlan({ expectedBatchSize: undefined, samplingRate: 0.01 }), 50),
    );

    // Assert
    expect(error.message).toMatch(/privacy\.samplingRate 0\.01 gives an expected batch of 0\.500.*below 1/);
  });

  it("refuses a site without training units", () => {
    expect(inputErrorOf(() => dpSgdSchedule(dpPlan(), 0)).message).toMatch(/no training rows/);
  });
});

/** One honest round as the trainer runs it, with every unit's gradient at the clip in one direction. */
function honestRound(plan: Plan, units: number, seed: number): number {
  const d = paramCount(plan);
  const rng = new CryptoRandom(seededFill(seed));
  const noise = { clipNorm: plan.privacy.clipNorm, noiseMultiplier: plan.privacy.noiseMultiplier };
  const { effectiveClip } = dpSgdGrid(noise, d);
  const { samplingRate, expectedBatch, steps } = dpSgdSchedule(plan, units);
  const optimizer = createOptimizer(plan.training, d);
  const weights = new Float32Array(d);
  const unitGradient = new Float32Array(d).fill(effectiveClip / Math.sqrt(d));
  for (let t = 0; t < steps; t++) {
    const sampled = poissonSample(units, samplingRate, rng);
    const sum = unitGradient.map((g) => g * sampled.length);
    const { noised } = noiseClippedSum(sum, noise, rng);
    optimizer.step(
      weights,
      noised.map((x) => x / expectedBatch),
    );
  }
  return l2Norm(weights);
}

describe("maxDpSgdDeltaNorm", () => {
  it("is lr T (C min(22, 1/q) + C/128 + sigma (2 sqrt(d) + 60)) for SGD", () => {
    // Prepare
    const d = 257;
    const sigma = 1.2 * 1.5;
    const gradient = 1.5 * 22 + 1.5 / 128 + sigma * (2 * Math.sqrt(d) + 60);
    const byRate = dpPlan({ expectedBatchSize: undefined, samplingRate: 0.25 });

    // Execute and Assert
    expect(maxDpSgdDeltaNorm(dpPlan(), d)).toBeCloseTo(0.5 * 10 * gradient * (1 + 1e-6), 9);
    const withRate = 1.5 * 4 + 1.5 / 128 + sigma * (2 * Math.sqrt(d) + 60);
    expect(maxDpSgdDeltaNorm(byRate, d)).toBeCloseTo(0.5 * 10 * withRate * (1 + 1e-6), 9);
  });

  it("divides by 1 - mu for momentum", () => {
    const sgd = maxDpSgdDeltaNorm(dpPlan(), 257);
    const momentum = maxDpSgdDeltaNorm(dpPlan({}, { optimizer: "momentum", momentum: 0.75 }), 257);
    const byDefault = maxDpSgdDeltaNorm(dpPlan({}, { optimizer: "momentum" }), 257);
    expect(momentum).toBeCloseTo(sgd * 4, 9);
    expect(byDefault).toBeCloseTo(sgd * 10, 8);
  });

  it("bounds Adam by lr sqrt(d) times a per-step factor from 1 up to 2.3 min(sqrt(t), 1/sqrt(1 - b2)), whatever C and z", () => {
    // Execute
    const one = maxDpSgdDeltaNorm(
      dpPlan({ stepsPerRound: 1 }, { optimizer: "adam", learningRate: 0.05 }),
      257,
    );
    const many = maxDpSgdDeltaNorm(
      dpPlan({ stepsPerRound: 5000 }, { optimizer: "adam", learningRate: 0.05 }),
      257,
    );
    const otherNoise = maxDpSgdDeltaNorm(
      dpPlan(
        { stepsPerRound: 5000, clipNorm: 9, noiseMultiplier: 3 },
        { optimizer: "adam", learningRate: 0.05 },
      ),
      257,
    );

    // Assert
    expect(one).toBeCloseTo(0.05 * Math.sqrt(257) * (1 + 1e-6), 12);
    let loose = 0;
    for (let t = 1; t <= 5000; t++) loose += 2.3 * Math.min(Math.sqrt(t), 1 / Math.sqrt(0.001));
    expect(many).toBeLessThan(0.05 * Math.sqrt(257) * loose);
    expect(many).toBeGreaterThan(0.05 * Math.sqrt(257) * 5000);
    expect(otherNoise).toBe(many);
  });

  it.each([
    ["sgd", {}],
    ["momentum", { optimizer: "momentum" }],
    ["adam", { optimizer: "adam", learningRate: 0.05 }],
  ] as const)("is above an honest %s round whose units all push one way", (_name, training) => {
    // Prepare
    const plan = dpPlan({ noiseMultiplier: 0.8, stepsPerRound: 12 }, training);

    // Execute
    const norm = honestRound(plan, 60, 7);

    // Assert
    expect(norm).toBeGreaterThan(0);
    expect(norm).toBeLessThan(maxDpSgdDeltaNorm(plan, paramCount(plan)));
  });

  it("is not asked of a site-update plan", () => {
    expect(() => maxDpSgdDeltaNorm(parsePlan(siteUpdatePlanJson()), 257)).toThrow(/site-update plan/);
  });
});
