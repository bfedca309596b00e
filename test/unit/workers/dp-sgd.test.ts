import * as tf from "@tensorflow/tfjs";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { paramCount } from "../../../src/core/plan";
import { dpSgdGrid } from "../../../src/core/privacy/dp-sgd";
import { CryptoRandom } from "../../../src/core/random";
import { type DpSgdStepInfo, fitDpSgd } from "../../../workers/train/dp-sgd";
import { CLIP_SAFETY, clippedGradientSum } from "../../../workers/train/per-example";
import { chiSquareTest, countValues, meanAndVariance, seededFill } from "../core/support";
import {
  addInto,
  clipTo,
  dpSgdPlan,
  type Example,
  examplesOf,
  fakeShardSource,
  logisticGradient,
} from "./dp-sgd-support";

/**
 * The real DP-SGD round of the training worker (workers/train/dp-sgd.ts with the real per-example clipping,
 * the real discrete Gaussian noise and the real Poisson sampler) on tfjs's cpu backend in Node. Only the
 * store around it is faked: in-memory shards (fakeShardSource) stand in for IndexedDB. The bytes of
 * CryptoRandom are seeded so that a failure reproduces; the samplers' arithmetic is the production one.
 */
beforeAll(async () => {
  await tf.setBackend("cpu");
});

afterEach(() => {
  vi.restoreAllMocks();
});

const seeded = (seed: number) => new CryptoRandom(seededFill(seed));

describe("fitDpSgd's sampling", () => {
  it("samples Binomial(N, q) units per step (chi-square over 400 steps), each step a sorted set of units", async () => {
    // Prepare: N = 40 units of one example each, q = 0.3
    const N = 40;
    const q = 0.3;
    const plan = dpSgdPlan({ privacy: { stepsPerRound: 400, samplingRate: q } });
    const source = fakeShardSource(examplesOf(N, 3), 16);
    const steps: DpSgdStepInfo[] = [];

    // Execute
    await fitDpSgd(plan, initialWeights(plan, seeded(1)), source, () => {}, {
      rng: seeded(2),
      onStep: (s) => steps.push({ ...s, units: s.units.slice() }),
    });

    // Assert
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (const s of steps) {
      expect([...s.units].every((u, i) => u < N && (i === 0 || u > (s.units[i - 1] as number)))).toBe(true);
      expect(s.examples).toBe(s.units.length);
    }
    const logChoose = (n: number, k: number) => {
      let r = 0;
      for (let i = 1; i <= k; i++) r += Math.log((n - k + i) / i);
      return r;
    };
    const pmf = (k: number) =>
      k < 0 || k > N ? 0 : Math.exp(logChoose(N, k) + k * Math.log(q) + (N - k) * Math.log(1 - q));
    const counts = countValues(steps.map((s) => s.units.length));
    const { pValue, dof } = chiSquareTest(counts, steps.length, pmf, { lo: 0, hi: N });
    expect(dof).toBeGreaterThan(5);
    expect(pValue).toBeGreaterThan(1e-3);
    const { mean } = meanAndVariance(steps.map((s) => s.units.length));
    expect(Math.abs(mean - q * N)).toBeLessThan(4 * Math.sqrt((q * (1 - q) * N) / 400));
    // The same test cannot pass with a fixed batch of q * N: it would put every step in one bin.
    expect(counts.size).toBeGreaterThan(6);
  });

  it("divides the step's noised sum by q * N, not by the realised batch", async () => {
    // Prepare: one SGD step, q = 0.5 of N = 20, tiny noise; large inputs so that some units are clipped
    const N = 20;
    const q = 0.5;
    const lr = 0.7;
    const clipNorm = 1;
    const plan = dpSgdPlan({
      learningRate: lr,
      privacy: { stepsPerRound: 1, samplingRate: q, clipNorm, noiseMultiplier: 1e-3 },
    });
    // Inputs from 0.2x to 4x: gradient norms on both sides of the clip
    const examples = examplesOf(N, 3).map((e, k) => ({ ...e, x: e.x.map((v) => v * (0.2 + 0.2 * k)) }));
    const global = initialWeights(plan, seeded(3));
    let sampled: Uint32Array = new Uint32Array(0);

    // Execute
    const out = await fitDpSgd(plan, global, fakeShardSource(examples, 8), () => {}, {
      rng: seeded(4),
      onStep: (s) => {
        sampled = s.units.slice();
      },
    });

    // Assert: S = -delta * qN / lr equals the naive clipped sum of exactly the sampled units
    const m = sampled.length;
    expect(m).not.toBe(q * N); // the seed gives a realised batch that tells the two divisors apart
    const { effectiveClip } = dpSgdGrid({ clipNorm, noiseMultiplier: 1e-3 }, paramCount(plan));
    const naive = new Float64Array(paramCount(plan));
    let clipped = 0;
    for (const u of sampled) {
      const g = logisticGradient(global, examples[u] as Example);
      if (Math.hypot(...g) > effectiveClip) clipped++;
      addInto(naive, clipTo(g, effectiveClip, CLIP_SAFETY));
    }
    expect(clipped).toBeGreaterThan(0);
    expect(clipped).toBeLessThan(m);
    const recovered = Array.from(out.weights, (w, i) => ((w - (global[i] as number)) * q * N) / -lr);
    const sigma = 1e-3 * clipNorm;
    for (let i = 0; i < naive.length; i++)
      expect(Math.abs((recovered[i] as number) - (naive[i] as number))).toBeLessThan(8 * sigma);
    // Dividing by the realised batch m would be off by the factor qN / m, far beyond the noise.
    const off = Math.max(...Array.from(naive, (v) => Math.abs(v * (1 - (q * N) / m))));
    expect(off).toBeGreaterThan(50 * sigma);
    expect(out.expectedBatch).toBe(q * N);
    expect(out.stats.clippedFraction).toBeCloseTo(clipped / m, 12);
  });

  it("still takes a noised step when no unit is sampled", async () => {
    // Prepare: q N = 1 of N = 20 units: about a third of the steps sample nobody
    const plan = dpSgdPlan({ privacy: { stepsPerRound: 10, samplingRate: 0.05 } });
    const global = initialWeights(plan, seeded(5));
    const steps: DpSgdStepInfo[] = [];
    const weightsAfter: Float32Array[] = [];

    // Execute: steps = 10, so a checkpoint after every step gives each step's weights
    await fitDpSgd(plan, global, fakeShardSource(examplesOf(20, 3), 8), () => {}, {
      rng: seeded(6),
      onStep: (s) => steps.push(s),
      onCheckpoint: async (_step, w) => {
        weightsAfter.push(w);
      },
    });

    // Assert
    const empty = steps.map((s, i) => (s.units.length === 0 ? i : -1)).filter((i) => i >= 0);
    expect(empty.length).toBeGreaterThan(0);
    for (const i of empty) {
      const before = i === 0 ? global : (weightsAfter[i - 1] as Float32Array);
      expect(weightsAfter[i]).not.toEqual(before);
    }
  });
});

describe("fitDpSgd's noise", () => {
  it("adds noise of std z * C to each step's clipped sum (z = 0.7, C = 1.7, 3201 weights)", async () => {
    // Prepare: q = 1, one SGD step, so delta = -lr (S + noise) / N with S the clipped sum of all N units
    const N = 8;
    const lr = 1.3;
    const z = 0.7;
    const C = 1.7;
    const plan = dpSgdPlan({
      hidden: [640],
      learningRate: lr,
      privacy: { stepsPerRound: 1, samplingRate: 1, clipNorm: C, noiseMultiplier: z },
    });
    const d = paramCount(plan);
    const examples = examplesOf(N, 3, 3);
    const global = initialWeights(plan, seeded(7));
    const { effectiveClip } = dpSgdGrid({ clipNorm: C, noiseMultiplier: z }, d);
    const x = Float32Array.from(examples.flatMap((e) => e.x));
    const y = Float32Array.from(examples, (e) => e.y);
    const { sum } = await clippedGradientSum(plan, global, x, y, undefined, effectiveClip);

    // Execute
    const out = await fitDpSgd(plan, global, fakeShardSource(examples, 5), () => {}, { rng: seeded(8) });

    // Assert
    expect(d).toBe(3201);
    const noise = Array.from(
      out.weights,
      (w, i) => (-(w - (global[i] as number)) * N) / lr - (sum[i] as number),
    );
    const { mean, variance } = meanAndVariance(noise);
    const std = Math.sqrt(variance);
    // 3201 draws: the sample std is within 1.3% (one sd) of z C; 5% is about 4 sd, and far from
    // the variance (z C)^2 = 1.416 and from the site-update std 2 z C = 2.38.
    expect(Math.abs(std / (z * C) - 1)).toBeLessThan(0.05);
    expect(Math.abs(mean)).toBeLessThan((4 * z * C) / Math.sqrt(d));
    expect(out.sigma).toBeCloseTo(z * C, 12);
  });
});

describe("fitDpSgd's per-unit clipping", () => {
  it("clips the sum of one unit's examples together, and counts N in units", async () => {
    // Prepare: 4 examples, the first two of unit 7 (stored numbers need not be 0-based or dense here)
    const plan = dpSgdPlan({
      learningRate: 0.4,
      privacy: { stepsPerRound: 1, samplingRate: 1, clipNorm: 0.5, noiseMultiplier: 1e-3 },
    });
    const base = examplesOf(4, 3, 3);
    const examples: Example[] = [
      { ...(base[0] as Example), unit: 7 },
      { x: (base[0] as Example).x.map((v) => v * 0.9), y: (base[0] as Example).y, unit: 7 },
      { ...(base[2] as Example), unit: 2 },
      { ...(base[3] as Example), unit: 9 },
    ];
    const global = initialWeights(plan, seeded(9));
    const { effectiveClip } = dpSgdGrid({ clipNorm: 0.5, noiseMultiplier: 1e-3 }, paramCount(plan));

    // Execute
    const out = await fitDpSgd(plan, global, fakeShardSource(examples, 3, 3), () => {}, { rng: seeded(10) });

    // Assert: S = -delta * N / lr with N = 3 units
    const perUnit = new Float64Array(paramCount(plan));
    const a = logisticGradient(global, examples[0] as Example);
    addInto(a, logisticGradient(global, examples[1] as Example));
    addInto(perUnit, clipTo(a, effectiveClip, CLIP_SAFETY));
    const perExample = new Float64Array(paramCount(plan));
    for (const e of examples.slice(0, 2))
      addInto(perExample, clipTo(logisticGradient(global, e), effectiveClip, CLIP_SAFETY));
    for (const e of examples.slice(2)) {
      const g = clipTo(logisticGradient(global, e), effectiveClip, CLIP_SAFETY);
      addInto(perUnit, g);
      addInto(perExample, g);
    }
    expect(out.units).toBe(3);
    const recovered = Array.from(out.weights, (w, i) => ((w - (global[i] as number)) * 3) / -0.4);
    const sigma = 0.5e-3;
    for (let i = 0; i < perUnit.length; i++)
      expect(Math.abs((recovered[i] as number) - (perUnit[i] as number))).toBeLessThan(8 * sigma);
    const gap = Math.max(...Array.from(perUnit, (v, i) => Math.abs(v - (perExample[i] as number))));
    expect(gap).toBeGreaterThan(0.1);
  });

  it("refuses shards whose units disagree with the import's count", async () => {
    const plan = dpSgdPlan();
    const examples = examplesOf(4, 3).map((e, i) => ({ ...e, unit: i % 2 }));
    const fitting = fitDpSgd(plan, initialWeights(plan), fakeShardSource(examples, 4, 3), () => {});
    await expect(fitting).rejects.toThrow(/list 3 patients .* hold 2; import the file again/);
  });
});

describe("fitDpSgd's training loop", () => {
  it("reports progress per step and checkpoints every ceil(steps / 10) steps; a resumed fit runs only the steps left", async () => {
    // Prepare
    const plan = dpSgdPlan({ privacy: { stepsPerRound: 23, samplingRate: 0.5 } });
    const global = initialWeights(plan, seeded(11));
    const source = fakeShardSource(examplesOf(30, 3), 7);
    const saved: { step: number; weights: Float32Array; loss: number }[] = [];
    const progress: number[] = [];

    // Execute
    const full = await fitDpSgd(plan, global, source, (p) => progress.push(p.step ?? -1), {
      rng: seeded(12),
      onCheckpoint: async (step, weights, loss) => {
        saved.push({ step, weights, loss });
      },
    });
    const at = saved[3] as (typeof saved)[number];
    const resumedSteps: number[] = [];
    const resumed = await fitDpSgd(plan, global, source, (p) => resumedSteps.push(p.epoch), {
      rng: seeded(13),
      resume: { epoch: at.step, weights: at.weights, loss: at.loss },
    });

    // Assert
    expect(progress).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(saved.map((s) => s.step)).toEqual([3, 6, 9, 12, 15, 18, 21, 23]);
    expect(saved.at(-1)?.weights).toEqual(full.weights);
    expect(resumedSteps).toEqual(Array.from({ length: 23 - 12 }, (_, i) => 13 + i));
    expect(resumed.stats.stepsRun).toBe(11);
    expect(resumed.weights).not.toEqual(at.weights);
    expect(full.stats.meanBatchUnits).toBeGreaterThan(8);
    expect(full.stats.meanBatchUnits).toBeLessThan(22);
  });

  it("keeps the shard cache bounded: shards are read again when they do not fit", async () => {
    // Prepare: 64 shards of 4 examples of 3 floats (48 bytes + 16 of labels) and a cache of 10 shards
    const plan = dpSgdPlan({ privacy: { stepsPerRound: 5, samplingRate: 0.5 } });
    const source = fakeShardSource(examplesOf(256, 3), 4);

    // Execute
    await fitDpSgd(plan, initialWeights(plan), source, () => {}, { rng: seeded(14), cacheBytes: 10 * 64 });

    // Assert: the index pass reads each shard once; the 5 steps read most of them again
    expect(source.reads.slice(0, 64)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(source.reads.length).toBeGreaterThan(64 + 4 * 50);
  });

  it("uses neither Math.random nor tf.random* while training (momentum, a hidden layer)", async () => {
    // Prepare
    const plan = dpSgdPlan({
      hidden: [5],
      optimizer: "momentum",
      privacy: { stepsPerRound: 4, samplingRate: 0.5 },
    });
    const global = initialWeights(plan, seeded(15));
    const source = fakeShardSource(examplesOf(30, 3), 8);
    const mathRandom = vi.spyOn(Math, "random");
    const kernels: string[] = [];
    const engine = tf.engine();
    const runKernel = engine.runKernel.bind(engine);
    vi.spyOn(engine, "runKernel").mockImplementation((name, inputs, attrs) => {
      kernels.push(name);
      return runKernel(name, inputs, attrs);
    });

    // Execute
    const out = await fitDpSgd(plan, global, source, () => {});

    // Assert: unseeded tf.randomNormal / randomUniform / truncatedNormal draw their seed from Math.random,
    // and the seeded kernels would show up by name
    expect(out.weights).not.toEqual(global);
    expect(kernels.length).toBeGreaterThan(0);
    expect(mathRandom).not.toHaveBeenCalled();
    expect(kernels.filter((k) => /random|multinomial/i.test(k))).toEqual([]);
  });
});
