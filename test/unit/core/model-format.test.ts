import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  describeModel,
  initialWeights,
  modelTopology,
  tfjsModelJson,
  tfjsWeightsBin,
  weightNames,
} from "../../../src/core/model-format";
import {
  type CnnModel,
  convOutputSizes,
  inputShape,
  type Plan,
  paramCount,
  parsePlan,
  weightShapes,
} from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import { splitByShapes } from "../../../src/core/vector";
import { buildModel, readWeights } from "../../../workers/train/model";
import { cnnPlanJson, imagePlan } from "../workers/image-plans";
import { demoPlanJson, float32Bits, meanAndVariance, seededFill } from "./support";

function planWith(model: { hidden: number[]; activation: string }, featureCount?: number): Plan {
  const raw = demoPlanJson();
  raw.model = { type: "mlp", ...model };
  if (featureCount !== undefined) raw.features = (raw.features as unknown[]).slice(0, featureCount);
  return parsePlan(raw);
}

function randomVector(length: number, scale: number, seed: number): Float32Array {
  const rng = new CryptoRandom(seededFill(seed));
  return Float32Array.from({ length }, () => ((rng.uint32() + 0.5) / 2 ** 32 - 0.5) * 2 * scale);
}

async function loadThroughModelJson(plan: Plan, weights: Float32Array): Promise<tf.LayersModel> {
  const modelJson = tfjsModelJson(plan);
  const bin = tfjsWeightsBin(weights);
  const manifest = modelJson.weightsManifest;
  return tf.loadLayersModel({
    load: async () => ({
      modelTopology: modelJson.modelTopology,
      weightSpecs: manifest[0]?.weights as tf.io.WeightsManifestEntry[],
      weightData: bin.buffer as ArrayBuffer,
    }),
  });
}

async function buildFromTopology(plan: Plan, weights: Float32Array): Promise<tf.LayersModel> {
  const model = await tf.models.modelFromJSON(
    modelTopology(plan) as unknown as tf.io.ModelJSON["modelTopology"] & {},
  );
  const parts = splitByShapes(weights, weightShapes(plan));
  model.setWeights(parts.map((p, i) => tf.tensor(p, weightShapes(plan)[i])));
  return model;
}

/** The MLP forward pass by hand, in float64, reading kernels as [in, out] row-major. */
function forwardByHand(plan: Plan, weights: Float32Array, input: number[]): number {
  const parts = splitByShapes(weights, weightShapes(plan));
  const act: Record<string, (x: number) => number> = {
    relu: (x) => Math.max(0, x),
    tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    elu: (x) => (x > 0 ? x : Math.exp(x) - 1),
  };
  if (plan.model.type !== "mlp") throw new Error("forwardByHand computes MLPs only");
  let h = input;
  const layers = plan.model.hidden.length + 1;
  for (let l = 0; l < layers; l++) {
    const kernel = parts[2 * l] as Float32Array;
    const bias = parts[2 * l + 1] as Float32Array;
    const out = bias.length;
    const f = l === layers - 1 ? act.sigmoid : act[plan.model.activation];
    h = Array.from({ length: out }, (_, j) => {
      let z = bias[j] as number;
      for (let i = 0; i < h.length; i++) z += (h[i] as number) * (kernel[i * out + j] as number);
      return (f as (x: number) => number)(z);
    });
  }
  return h[0] as number;
}

beforeAll(async () => {
  await tf.setBackend("cpu");
  await tf.ready();
  expect(tf.getBackend()).toBe("cpu");
});

const plans: [string, () => Plan][] = [
  ["the demo plan (30 -> 8 relu -> 1)", () => parsePlan(demoPlanJson())],
  ["a deeper tanh plan (4 -> 5 -> 3 -> 1)", () => planWith({ hidden: [5, 3], activation: "tanh" }, 4)],
  ["an elu plan (7 -> 6 -> 1)", () => planWith({ hidden: [6], activation: "elu" }, 7)],
  ["a logistic plan (30 -> 1)", () => planWith({ hidden: [], activation: "relu" })],
];

const cnnPlans: [string, () => Plan][] = [
  [
    "the CNN test plan (28×28×1, conv 8 pool 2, conv 16 stride 2 pool 2, dense 32)",
    () => parsePlan(cnnPlanJson()),
  ],
  [
    "an RGB CNN with a 5×5 stride-2 conv, a pool of 3, odd sizes and no hidden dense layer",
    () =>
      imagePlan(
        { width: 19, height: 13, channels: 3 },
        {
          type: "cnn",
          conv: [
            { filters: 6, kernel: 5, stride: 2 },
            { filters: 4, kernel: 2, pool: 3 },
            { filters: 3, kernel: 1 },
          ],
          dense: [],
          activation: "tanh",
        },
      ),
  ],
  [
    "an MLP on flattened 6×10×3 images",
    () => imagePlan({ width: 10, height: 6, channels: 3 }, { type: "mlp", hidden: [7], activation: "elu" }),
  ],
];

describe("tfjsModelJson and tfjsWeightsBin in @tensorflow/tfjs", () => {
  it.each(cnnPlans)("load for %s with the vector's weights bit for bit", async (_, makePlan) => {
    // Prepare
    const plan = makePlan();
    const weights = randomVector(paramCount(plan), 0.5, 63);

    // Execute
    const model = await loadThroughModelJson(plan, weights);

    // Assert
    const loaded = model.getWeights().map((t) => t.dataSync() as Float32Array);
    expect(model.getWeights().map((t) => t.shape)).toEqual(weightShapes(plan));
    expect(float32Bits(Float32Array.from(loaded.flatMap((a) => Array.from(a))))).toEqual(
      float32Bits(weights),
    );
    model.dispose();
  });

  it.each(plans)("load for %s with the vector's weights bit for bit", async (_, makePlan) => {
    // Prepare
    const plan = makePlan();
    const weights = randomVector(paramCount(plan), 0.8, 61);

    // Execute
    const model = await loadThroughModelJson(plan, weights);

    // Assert
    const loaded = model.getWeights().map((t) => t.dataSync() as Float32Array);
    expect(model.getWeights().map((t) => t.shape)).toEqual(weightShapes(plan));
    expect(float32Bits(Float32Array.from(loaded.flatMap((a) => Array.from(a))))).toEqual(
      float32Bits(weights),
    );
    model.dispose();
  });

  it.each(plans)("predict for %s exactly as the model built from the topology", async (_, makePlan) => {
    // Prepare
    const plan = makePlan();
    const weights = randomVector(paramCount(plan), 0.8, 62);
    const inputs = Array.from({ length: 6 }, (_, r) =>
      Array.from(randomVector(plan.features.length, 2, 70 + r)),
    );
    const loaded = await loadThroughModelJson(plan, weights);
    const built = await buildFromTopology(plan, weights);

    // Execute
    const x = tf.tensor2d(inputs);
    const fromJson = Array.from((loaded.predict(x) as tf.Tensor).dataSync());
    const fromTopology = Array.from((built.predict(x) as tf.Tensor).dataSync());

    // Assert
    expect(fromJson).toEqual(fromTopology);
    inputs.forEach((input, r) => {
      expect(Math.abs((fromJson[r] as number) - forwardByHand(plan, weights, input))).toBeLessThan(1e-5);
    });
    expect(new Set(fromJson.map((p) => p.toFixed(4))).size).toBeGreaterThan(1);
    x.dispose();
    loaded.dispose();
    built.dispose();
  });
});

describe("tfjsModelJson", () => {
  it("names and shapes the weights the way tfjs getWeights() orders them, pointing at weights.bin", () => {
    // Prepare
    const plan = planWith({ hidden: [5, 3], activation: "tanh" }, 4);

    // Execute
    const json = tfjsModelJson(plan);
    const custom = tfjsModelJson(plan, "final/weights.bin");

    // Assert
    expect(json.format).toBe("layers-model");
    expect(json.weightsManifest).toEqual([
      {
        paths: ["weights.bin"],
        weights: [
          { name: "dense_1/kernel", shape: [4, 5], dtype: "float32" },
          { name: "dense_1/bias", shape: [5], dtype: "float32" },
          { name: "dense_2/kernel", shape: [5, 3], dtype: "float32" },
          { name: "dense_2/bias", shape: [3], dtype: "float32" },
          { name: "dense_3/kernel", shape: [3, 1], dtype: "float32" },
          { name: "dense_3/bias", shape: [1], dtype: "float32" },
        ],
      },
    ]);
    expect(custom.weightsManifest[0]?.paths).toEqual(["final/weights.bin"]);
    expect(weightNames(plan)).toHaveLength(weightShapes(plan).length);
  });

  it("ends in one sigmoid unit and takes the plan's feature count as input", () => {
    // Prepare
    const plan = parsePlan(demoPlanJson());

    // Execute
    const topology = modelTopology(plan);

    // Assert
    const layers = topology.config.layers;
    expect(layers.map((l) => [l.config.units, l.config.activation])).toEqual([
      [8, "relu"],
      [1, "sigmoid"],
    ]);
    expect(layers[0]?.config.batch_input_shape).toEqual([null, 30]);
    expect(topology.config.name).toBe("fedward_wdbc_demo");
  });
});

describe("CNN topology in @tensorflow/tfjs (cpu backend)", () => {
  it.each(cnnPlans)(
    "builds %s with getWeights() shapes and names as weightShapes and weightNames say",
    async (_, makePlan) => {
      // Prepare
      const plan = makePlan();

      // Execute
      const model = await tf.models.modelFromJSON(
        modelTopology(plan) as unknown as tf.io.ModelJSON["modelTopology"] & {},
      );

      // Assert
      expect(model.getWeights().map((t) => t.shape)).toEqual(weightShapes(plan));
      expect(model.weights.map((w) => w.originalName)).toEqual(weightNames(plan));
      expect(model.countParams()).toBe(paramCount(plan));
      expect(model.inputs[0]?.shape).toEqual([null, ...inputShape(plan)]);
      expect(model.outputs[0]?.shape).toEqual([null, 1]);
      model.dispose();
    },
  );

  it.each(cnnPlans.slice(0, 2))(
    "gives each conv entry of %s the size convOutputSizes computes",
    async (_, makePlan) => {
      // Prepare
      const plan = makePlan();
      const cnn = plan.model as CnnModel;
      const model = await tf.models.modelFromJSON(
        modelTopology(plan) as unknown as tf.io.ModelJSON["modelTopology"] & {},
      );

      // Execute: the output of each conv, or of its pool when it has one
      const ends = model.layers.filter(
        (l, i) =>
          l.getClassName() === "MaxPooling2D" ||
          (l.getClassName() === "Conv2D" && model.layers[i + 1]?.getClassName() !== "MaxPooling2D"),
      );

      // Assert
      expect(ends.map((l) => l.outputShape)).toEqual(
        convOutputSizes(plan.image as NonNullable<Plan["image"]>, cnn.conv).map((s) => [
          null,
          s.height,
          s.width,
          s.channels,
        ]),
      );
      model.dispose();
    },
  );

  it("writes Conv2D with 'same' padding, max pools with stride = size, and the image as the input", () => {
    // Prepare
    const plan = parsePlan(cnnPlanJson());

    // Execute
    const layers = modelTopology(plan).config.layers;

    // Assert
    expect(layers.map((l) => l.class_name)).toEqual([
      "Conv2D",
      "MaxPooling2D",
      "Conv2D",
      "MaxPooling2D",
      "Flatten",
      "Dense",
      "Dense",
    ]);
    expect(layers[0]?.config).toMatchObject({
      name: "conv2d_1",
      filters: 8,
      kernel_size: [3, 3],
      strides: [1, 1],
      padding: "same",
      activation: "relu",
      batch_input_shape: [null, 28, 28, 1],
    });
    expect(layers[2]?.config).toMatchObject({ name: "conv2d_2", strides: [2, 2] });
    expect(layers[3]?.config).toMatchObject({ pool_size: [2, 2], strides: [2, 2], padding: "valid" });
    expect(layers[6]?.config).toMatchObject({ name: "dense_2", units: 1, activation: "sigmoid" });
    expect(weightNames(plan)).toEqual([
      "conv2d_1/kernel",
      "conv2d_1/bias",
      "conv2d_2/kernel",
      "conv2d_2/bias",
      "dense_1/kernel",
      "dense_1/bias",
      "dense_2/kernel",
      "dense_2/bias",
    ]);
    expect(describeModel(plan)).toBe(
      "Convolutional network: 8 filters 3×3, max pool 2×2; 16 filters 3×3 stride 2, max pool 2×2; then dense layers [32] (relu), 5921 weights",
    );
  });

  it("exports a trained CNN that tf.loadLayersModel reads back and that predicts as the trained model", async () => {
    // Prepare: a few Adam steps move every weight away from the initial ones
    const plan = parsePlan(cnnPlanJson());
    const trained = await buildModel(plan);
    const x = tf.tensor(
      randomVector(6 * 784, 0.5, 64).map((v) => v + 0.5),
      [6, 28, 28, 1],
    );
    const y = tf.tensor2d([1, 0, 1, 1, 0, 0], [6, 1]);
    for (let i = 0; i < 3; i++) await trained.trainOnBatch(x, y);
    const weights = await readWeights(trained);

    // Execute
    const loaded = await loadThroughModelJson(plan, weights);

    // Assert
    const expected = Array.from((trained.predict(x) as tf.Tensor).dataSync());
    const actual = Array.from((loaded.predict(x) as tf.Tensor).dataSync());
    expect(actual).toEqual(expected);
    expect(new Set(actual.map((p) => p.toFixed(4))).size).toBeGreaterThan(1);
    tf.dispose([x, y]);
    trained.dispose();
    loaded.dispose();
  });
});

describe("tfjsWeightsBin", () => {
  it("writes float32 little-endian", () => {
    // Prepare
    const weights = Float32Array.of(1, -2, -0);

    // Execute
    const bytes = tfjsWeightsBin(weights);

    // Assert
    expect(Array.from(bytes)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x80]);
  });
});

describe("initialWeights", () => {
  it("has the plan's length, zero biases and kernels inside the Glorot limit", () => {
    // Prepare
    const plan = parsePlan(demoPlanJson());

    // Execute
    const weights = initialWeights(plan, new CryptoRandom(seededFill(81)));

    // Assert
    expect(weights).toHaveLength(257);
    const [k1, b1, k2, b2] = splitByShapes(weights, weightShapes(plan)) as Float32Array[];
    expect(float32Bits(b1 as Float32Array)).toEqual(new Array(8).fill(0));
    expect(float32Bits(b2 as Float32Array)).toEqual([0]);
    const limit1 = Math.sqrt(6 / (30 + 8));
    const limit2 = Math.sqrt(6 / (8 + 1));
    expect(Array.from(k1 as Float32Array).every((w) => Math.abs(w) < limit1)).toBe(true);
    expect(Array.from(k2 as Float32Array).every((w) => Math.abs(w) < limit2)).toBe(true);
    expect(Math.max(...Array.from(k2 as Float32Array, Math.abs))).toBeGreaterThan(limit1);
  });

  it("draws kernels uniform on (-L, L): mean 0 and variance L^2/3 (60000 weights, seeded, 4 standard errors)", () => {
    // Prepare: one 200 x 300 kernel dominates; L = sqrt(6 / 500)
    const raw = demoPlanJson();
    raw.features = Array.from({ length: 200 }, (_, i) => ({
      name: `f${i}`,
      column: `f${i}`,
      type: "number",
      mean: 0,
      std: 1,
    }));
    raw.model = { type: "mlp", hidden: [300], activation: "relu" };
    const wide = parsePlan(raw);
    const limit = Math.sqrt(6 / 500);

    // Execute
    const weights = initialWeights(wide, new CryptoRandom(seededFill(82)));

    // Assert
    const kernel = (splitByShapes(weights, weightShapes(wide)) as Float32Array[])[0] as Float32Array;
    const n = kernel.length;
    const { mean, variance } = meanAndVariance(kernel);
    const varianceOfSquares = limit ** 4 / 5 - (limit ** 2 / 3) ** 2;
    expect(n).toBe(60000);
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(limit ** 2 / 3 / n));
    expect(Math.abs(variance - limit ** 2 / 3)).toBeLessThan(4 * Math.sqrt(varianceOfSquares / n));
  });

  it("stays within the float32 rounding of the limit for the most extreme bytes", () => {
    // Prepare
    const plan = planWith({ hidden: [3], activation: "relu" }, 2);
    const limit = Math.sqrt(6 / 5);

    // Execute
    const high = initialWeights(plan, new CryptoRandom((b) => b.fill(0xff)));
    const low = initialWeights(plan, new CryptoRandom((b) => b.fill(0x00)));

    // Assert
    const kernel = (v: Float32Array) => Array.from(v.subarray(0, 6));
    expect(kernel(high).every((w) => w > 0 && w <= Math.fround(limit))).toBe(true);
    expect(kernel(low).every((w) => w < 0 && w >= -Math.fround(limit))).toBe(true);
  });

  it("draws conv kernels with Keras's fans, fan_in = kh·kw·cin and fan_out = kh·kw·cout, and zero biases", () => {
    // Prepare: conv 5×5, 3 → 64 filters: L = sqrt(6 / (75 + 1600)); the dense-style sqrt(6 / (3 + 64)) is 5 times larger
    const plan = imagePlan(
      { width: 8, height: 8, channels: 3 },
      {
        type: "cnn",
        conv: [{ filters: 64, kernel: 5, pool: 2 }],
        dense: [],
        activation: "relu",
      },
    );
    const limit = Math.sqrt(6 / (5 * 5 * 3 + 5 * 5 * 64));

    // Execute
    const weights = initialWeights(plan, new CryptoRandom(seededFill(83)));

    // Assert
    const [kernel, bias, dense] = splitByShapes(weights, weightShapes(plan)) as Float32Array[];
    const { mean, variance } = meanAndVariance(kernel as Float32Array);
    const n = (kernel as Float32Array).length;
    const varianceOfSquares = limit ** 4 / 5 - (limit ** 2 / 3) ** 2;
    expect(n).toBe(4800);
    expect(Math.max(...Array.from(kernel as Float32Array, Math.abs))).toBeLessThan(limit);
    expect(Math.max(...Array.from(kernel as Float32Array, Math.abs))).toBeGreaterThan(0.99 * limit);
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(limit ** 2 / 3 / n));
    expect(Math.abs(variance - limit ** 2 / 3)).toBeLessThan(4 * Math.sqrt(varianceOfSquares / n));
    expect(float32Bits(bias as Float32Array)).toEqual(new Array(64).fill(0));
    // The dense kernel after Flatten (4·4·64 → 1) keeps the dense fans
    expect(Math.max(...Array.from(dense as Float32Array, Math.abs))).toBeLessThan(Math.sqrt(6 / (1024 + 1)));
  });

  it("draws from crypto.getRandomValues by default, differently each time", () => {
    // Prepare
    const plan = parsePlan(demoPlanJson());

    // Execute
    const a = initialWeights(plan);
    const b = initialWeights(plan);

    // Assert
    expect(float32Bits(a)).not.toEqual(float32Bits(b));
  });
});
