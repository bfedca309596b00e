import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  inputShape,
  inputWidth,
  type Plan,
  paramCount,
  parsePlan,
  weightShapes,
} from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import { concat, l2Norm } from "../../../src/core/vector";
import { buildModel, disposeModel, writeWeights } from "../../../workers/train/model";
import { CLIP_SAFETY, clippedGradientSum, forwardLogits } from "../../../workers/train/per-example";
import { seededFill } from "../core/support";
import { imagePlan } from "./image-plans";
import { useWasmFromNodeModules } from "./wasm-node";

/**
 * Per-unit norms and the clipped sum against the LayersModel of buildModel, one example at a time
 * (tf.variableGrads of its BCE loss), on tfjs's cpu backend.
 */
const TOLERANCE = 1e-5;
const METHODS = ["auto", "ghost", "materialised"] as const;

function tabularPlan(activation: string, hidden: number[]): Plan {
  return parsePlan({
    id: `mlp-${activation}`,
    title: "per-example test",
    features: [0, 1, 2, 3, 4].map((i) => ({
      name: `f${i}`,
      column: `c${i}`,
      type: "number",
      mean: 0,
      std: 1,
    })),
    label: { column: "y", positive: "yes", negative: "no" },
    model: { type: "mlp", hidden, activation },
    training: { epochs: 1, batchSize: 16, optimizer: "sgd", learningRate: 0.1 },
    privacy: { clipNorm: 1.5, noiseMultiplier: 0.7, delta: 1e-5, epsilonBudget: 10 },
    rounds: 1,
    minSites: 1,
  });
}

function demoPlan(file: string): Plan {
  const url = new URL(`../../../public/demo/${file}`, import.meta.url);
  return parsePlan(JSON.parse(readFileSync(url, "utf8")), file);
}

/** Seeded uniform numbers in [lo, hi) (test data only; never for noise). */
function uniform(seed: number): (lo: number, hi: number) => number {
  const rng = new CryptoRandom(seededFill(seed));
  return (lo, hi) => lo + ((rng.uint32() + 0.5) / 4294967296) * (hi - lo);
}

/** Glorot-sized kernels and nonzero biases, inputs in [0, 1] for images or [-2, 2], mixed labels. */
function batch(plan: Plan, n: number, seed: number) {
  const draw = uniform(seed);
  const weights = concat(
    weightShapes(plan).map((shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const limit =
        shape.length >= 2
          ? 1.3 * Math.sqrt(6 / (receptive * ((shape.at(-2) as number) + (shape.at(-1) as number))))
          : 0.3;
      return Array.from({ length: size }, () => draw(-limit, limit));
    }),
  );
  const [lo, hi] = plan.image ? [0, 1] : [-2, 2];
  const x = Float32Array.from({ length: n * inputWidth(plan) }, () => draw(lo, hi));
  const y = Float32Array.from({ length: n }, () => (draw(0, 1) < 0.5 ? 1 : 0));
  return { weights, x, y };
}

/** Each example's gradient from the LayersModel (tf.variableGrads of its BCE), and the mean loss. */
async function naiveGradients(plan: Plan, weights: Float32Array, x: Float32Array, y: Float32Array) {
  const model = await buildModel(plan);
  writeWeights(model, plan, weights);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  expect(vars.map((v) => v.shape)).toEqual(weightShapes(plan));
  const width = inputWidth(plan);
  const grads: Float32Array[] = [];
  let loss = 0;
  for (let i = 0; i < y.length; i++) {
    const xi = tf.tensor(x.slice(i * width, (i + 1) * width), [1, ...inputShape(plan)]);
    const yi = tf.tensor2d([y[i] as number], [1, 1]);
    const out = tf.variableGrads(
      () => tf.sum(tf.metrics.binaryCrossentropy(yi, model.apply(xi) as tf.Tensor)) as tf.Scalar,
      vars,
    );
    grads.push(concat(await Promise.all(vars.map((v) => (out.grads[v.name] as tf.Tensor).data()))));
    loss += (await out.value.data())[0] as number;
    tf.dispose([xi, yi, out.value, ...Object.values(out.grads)]);
  }
  disposeModel(model);
  return { grads, loss: loss / y.length };
}

function add(a: Float32Array, b: ArrayLike<number>, scale = 1): Float32Array {
  return a.map((v, i) => v + scale * (b[i] as number));
}

/** g_u for every unit (0 for an empty one). */
function unitGradients(
  grads: Float32Array[],
  unitOf: Uint32Array | undefined,
  units: number,
): Float32Array[] {
  const out: Float32Array[] = Array.from({ length: units }, () => new Float32Array(grads[0]?.length ?? 0));
  grads.forEach((g, i) => {
    const u = unitOf ? (unitOf[i] as number) : i;
    out[u] = add(out[u] as Float32Array, g);
  });
  return out;
}

/** Σ_u min(1, C/||g_u||) g_u at the clip the implementation documents (clip·CLIP_SAFETY), in float64. */
function naiveClippedSum(units: Float32Array[], clip: number): Float64Array {
  const out = new Float64Array(units[0]?.length ?? 0);
  for (const g of units) {
    const factor = Math.min(1, (clip * CLIP_SAFETY) / l2Norm(g));
    g.forEach((v, j) => {
      out[j] = (out[j] as number) + factor * v;
    });
  }
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  expect(actual.length, what).toBe(expected.length);
  const diff = Array.from(actual, (v, i) => v - (expected[i] as number));
  expect(l2Norm(diff), what).toBeLessThanOrEqual(TOLERANCE * l2Norm(expected) + 1e-12);
}

function expectNormsClose(actual: ArrayLike<number>, expected: number[], what: string) {
  expect(actual.length, what).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(Math.abs((actual[i] as number) - e), `${what}, unit ${i}`).toBeLessThanOrEqual(
      TOLERANCE * e + 1e-12,
    );
  });
}

/** A clip between the smallest and the largest unit norm: some units clip, some do not. */
function middleClip(norms: number[]): number {
  const sorted = norms.filter((v) => v > 0).sort((a, b) => a - b);
  return (sorted[Math.floor(sorted.length / 2)] as number) * 1.01;
}

/** Runs every check of one plan and batch against the naive gradients. */
async function checkPlan(plan: Plan, n: number, seed: number, unitOf?: Uint32Array, units = n) {
  // Prepare
  const { weights, x, y } = batch(plan, n, seed);
  const naive = await naiveGradients(plan, weights, x, y);
  const perUnit = unitGradients(naive.grads, unitOf, units);
  const naiveNorms = perUnit.map(l2Norm);
  const clip = middleClip(naiveNorms);
  const clipped = naiveNorms.filter((v) => v > clip).length;
  expect(clipped).toBeGreaterThan(0);
  expect(clipped).toBeLessThan(naiveNorms.filter((v) => v > 0).length);
  const expected = naiveClippedSum(perUnit, clip);
  for (const method of METHODS) {
    // Execute
    const out = await clippedGradientSum(plan, weights, x, y, unitOf, clip, { method });
    // Assert
    expectNormsClose(out.norms, naiveNorms, `${plan.id} ${method} norms`);
    expectClose(out.sum, expected, `${plan.id} ${method} clipped sum`);
    expect(out.loss).toBeCloseTo(naive.loss, 5);
  }
  // Without clipping, one example's sum is its own gradient.
  const first = await clippedGradientSum(
    plan,
    weights,
    x.subarray(0, inputWidth(plan)),
    y.subarray(0, 1),
    undefined,
    1e6,
  );
  expectClose(first.sum, naive.grads[0] as Float32Array, `${plan.id} one example`);
  return { weights, x, y, naive, perUnit, clip };
}

const activations = ["relu", "tanh", "sigmoid", "elu"] as const;

const cnnCases: [string, Plan][] = [
  [
    "stride 1 without pool, then stride 2 with pool (even kernel)",
    imagePlan(
      { width: 9, height: 7, channels: 3 },
      {
        type: "cnn",
        conv: [
          { filters: 3, kernel: 3 },
          { filters: 4, kernel: 2, stride: 2, pool: 2 },
        ],
        dense: [5],
        activation: "elu",
      },
    ),
  ],
  [
    "stride 2 without pool, then a 1×1 conv with pool 3 straight into the output layer",
    imagePlan(
      { width: 10, height: 10, channels: 1 },
      {
        type: "cnn",
        conv: [
          { filters: 4, kernel: 3, stride: 2 },
          { filters: 3, kernel: 1, pool: 3 },
        ],
        dense: [],
        activation: "sigmoid",
      },
    ),
  ],
  [
    "stride 1 with pool, then stride 2 without pool, on colour images",
    imagePlan(
      { width: 8, height: 6, channels: 3 },
      {
        type: "cnn",
        conv: [
          { filters: 5, kernel: 5, pool: 2 },
          { filters: 2, kernel: 3, stride: 2 },
        ],
        dense: [3],
        activation: "relu",
      },
    ),
  ],
  [
    "stride 2 with pool, tanh",
    imagePlan(
      { width: 11, height: 9, channels: 1 },
      { type: "cnn", conv: [{ filters: 6, kernel: 3, stride: 2, pool: 2 }], dense: [4], activation: "tanh" },
    ),
  ],
];

const demos = ["wdbc-plan.json", "synthea-hypertension-plan.json", "digits-plan.json"];

describe("per-example gradients", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it.each(activations)("match one-at-a-time gradients of a Dense MLP with %s", async (activation) => {
    await checkPlan(tabularPlan(activation, [6, 4]), 9, 11);
  });

  it("match on an image plan's MLP (Flatten first)", async () => {
    const plan = imagePlan(
      { width: 4, height: 3, channels: 3 },
      { type: "mlp", hidden: [5], activation: "tanh" },
    );
    await checkPlan(plan, 7, 12);
  });

  it.each(cnnCases)("match on a CNN: %s", async (_, plan) => {
    await checkPlan(plan, 6, 13);
  });

  it.each(demos)("match on the demo plan %s", async (file) => {
    await checkPlan(demoPlan(file), 8, 14);
  });

  it("clip a unit of several examples by the norm of their sum, for every layer kind and method", async () => {
    // units 2, 4 and 5 are empty; unit 3 has three examples, unit 0 two.
    const unitOf = Uint32Array.from([3, 0, 3, 1, 0, 6, 3]);
    for (const plan of [tabularPlan("tanh", [6]), cnnCases[0]?.[1] as Plan, demoPlan("digits-plan.json")]) {
      const { perUnit } = await checkPlan(plan, 7, 15, unitOf, 7);
      expect(l2Norm(perUnit[2] as Float32Array)).toBe(0);
    }
  });

  it("number singleton units as unitOf says", async () => {
    await checkPlan(tabularPlan("relu", [4]), 5, 16, Uint32Array.from([4, 2, 0, 1, 3]));
  });

  it("give two examples of one unit the norm of their summed gradient, not the sum of their norms", async () => {
    // Prepare: the same image twice with opposite labels, so the two gradients partly cancel.
    const plan = demoPlan("digits-plan.json");
    const { weights, x: one } = batch(plan, 1, 17);
    const x = concat([one, one, one]);
    const y = Float32Array.from([1, 0, 1]);
    const unitOf = Uint32Array.from([0, 0, 1]);
    const { grads } = await naiveGradients(plan, weights, x, y);
    const [ga, gb] = grads as [Float32Array, Float32Array];
    const together = l2Norm(add(ga, gb));
    const clip = l2Norm(ga) * 0.5;
    // Execute
    const out = await clippedGradientSum(plan, weights, x, y, unitOf, clip);
    // Assert
    expect(together).toBeLessThan(0.9 * (l2Norm(ga) + l2Norm(gb)));
    expectNormsClose(out.norms, [together, l2Norm(ga)], "units");
    const expected = add(
      add(ga, gb).map((v) => v * Math.min(1, (clip * CLIP_SAFETY) / together)),
      ga,
      (clip * CLIP_SAFETY) / l2Norm(ga),
    );
    expectClose(out.sum, expected, "clipped sum");
  });

  it("keep every clipped unit's gradient, as the LayersModel computes it, within the clip", async () => {
    for (const plan of [demoPlan("wdbc-plan.json"), demoPlan("digits-plan.json"), cnnCases[1]?.[1] as Plan]) {
      // Prepare
      const { weights, x, y } = batch(plan, 12, 18);
      const { grads } = await naiveGradients(plan, weights, x, y);
      const norms = grads.map(l2Norm);
      const clip = Math.min(...norms) * 0.7;
      for (const method of ["ghost", "materialised"] as const) {
        // Execute
        const out = await clippedGradientSum(plan, weights, x, y, undefined, clip, { method });
        // Assert: each unit scaled by the factor it was given stays within clip.
        grads.forEach((g, i) => {
          const scaled = l2Norm(g) * ((clip * CLIP_SAFETY) / (out.norms[i] as number));
          expect(scaled).toBeLessThanOrEqual(clip);
          expect(scaled).toBeGreaterThan(clip * (1 - 1e-4));
        });
      }
    }
  });
});

describe("forwardLogits", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it.each([
    ...demos.map((file): [string, Plan] => [file, demoPlan(file)]),
    ...cnnCases,
    ...activations.map((a): [string, Plan] => [`mlp ${a}`, tabularPlan(a, [3, 2])]),
  ])("equals the LayersModel's predict through a sigmoid: %s", async (_, plan) => {
    // Prepare
    const { weights, x } = batch(plan, 10, 19);
    const model = await buildModel(plan);
    writeWeights(model, plan, weights);
    const xs = tf.tensor(x, [10, ...inputShape(plan)]);
    // Execute
    const logits = forwardLogits(plan, weights, xs);
    const ours = await tf.sigmoid(logits).data();
    const theirs = await (model.predict(xs) as tf.Tensor).data();
    // Assert
    expect(logits.shape).toEqual([10, 1]);
    Array.from(theirs).forEach((p, i) => {
      expect(Math.abs((ours[i] as number) - p)).toBeLessThan(1e-6);
    });
    tf.dispose([xs, logits]);
    disposeModel(model);
  });
});

describe("clippedGradientSum's edges", () => {
  const plan = demoPlan("digits-plan.json");
  const { weights, x, y } = batch(plan, 4, 20);

  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("leaves no tensor behind", async () => {
    // Prepare
    await clippedGradientSum(plan, weights, x, y, undefined, 0.5);
    const before = tf.memory().numTensors;
    // Execute
    await clippedGradientSum(plan, weights, x, y, undefined, 0.5);
    await clippedGradientSum(plan, weights, x, y, Uint32Array.from([1, 0, 1, 2]), 0.5, { method: "ghost" });
    await clippedGradientSum(plan, weights, x, y, Uint32Array.from([1, 0, 1, 2]), 0.5, {
      method: "materialised",
    });
    await expect(clippedGradientSum(plan, weights, x, y, undefined, -1)).rejects.toThrow();
    // Assert
    expect(tf.memory().numTensors).toBe(before);
  });

  it("returns zeros for an empty batch", async () => {
    const out = await clippedGradientSum(
      plan,
      weights,
      new Float32Array(0),
      new Float32Array(0),
      undefined,
      2,
    );
    expect(out.sum).toEqual(new Float32Array(paramCount(plan)));
    expect(out.norms.length).toBe(0);
    expect(out.loss).toBe(0);
  });

  type Args = [Float32Array, Float32Array, Float32Array, Uint32Array | undefined, number];
  it.each<[string, () => Args, RegExp]>([
    ["weights", () => [weights.subarray(1), x, y, undefined, 1], new RegExp(`needs ${paramCount(plan)}`)],
    ["x", () => [weights, x.subarray(1), y, undefined, 1], /x has 255 values, but 4 examples/],
    ["unitOf's length", () => [weights, x, y, Uint32Array.from([0, 1]), 1], /unitOf has 2 entries/],
    ["a unit index", () => [weights, x, y, Uint32Array.from([0, 1, 4, 2]), 1], /Example 2 belongs to unit 4/],
    ["a label", () => [weights, x, Float32Array.from([0, 1, 2, 0]), undefined, 1], /example 2 is 2/],
    ["the clip", () => [weights, x, y, undefined, 0], /clip norm is 0/],
    [
      "a NaN input",
      () => [weights, Float32Array.from(x, (v, i) => (i === 70 ? Number.NaN : v)), y, undefined, 1],
      /Input 6 of example 1 is NaN/,
    ],
  ])("refuses a bad %s with a clear message", async (_, args, message) => {
    const [w, xs, ys, unitOf, clip] = args();
    await expect(clippedGradientSum(plan, w, xs, ys, unitOf, clip)).rejects.toThrow(message);
  });
});

describe("on tfjs-backend-wasm, which has no Conv2DBackpropFilter of its own", () => {
  beforeAll(() => useWasmFromNodeModules());
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  it.each([["digits-plan.json", demoPlan("digits-plan.json")], ...cnnCases.slice(0, 2)])(
    "gives the cpu backend's norms and clipped sum: %s",
    async (_, plan) => {
      // Prepare
      const { weights, x, y } = batch(plan, 6, 21);
      const unitOf = Uint32Array.from([0, 1, 0, 2, 3, 2]);
      await tf.setBackend("cpu");
      const clip = middleClip(Array.from((await clippedGradientSum(plan, weights, x, y, unitOf, 1e6)).norms));
      const cpu = await clippedGradientSum(plan, weights, x, y, unitOf, clip);
      await tf.setBackend("wasm");
      expect(tf.getKernel("Conv2DBackpropFilter", "wasm")).toBeUndefined();
      const before = tf.memory().numTensors;
      for (const method of METHODS) {
        // Execute
        const wasm = await clippedGradientSum(plan, weights, x, y, unitOf, clip, { method });
        // Assert
        expectNormsClose(wasm.norms, Array.from(cpu.norms), `wasm ${method} norms`);
        expectClose(wasm.sum, cpu.sum, `wasm ${method} clipped sum`);
      }
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
