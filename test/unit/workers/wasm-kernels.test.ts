import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { inputWidth, type Plan } from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import { buildModel, readWeights, writeWeights } from "../../../workers/train/model";
import "../../../workers/train/wasm-kernels";
import { seededFill } from "../core/support";
import { imagePlan } from "./image-plans";
import { useWasmFromNodeModules } from "./wasm-node";

/** Deterministic values in [-1, 1]. */
function wave(length: number, phase: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 1.37 + phase) * Math.cos(i * 0.21));
}

/** Largest absolute difference over the largest absolute value of the reference. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

interface ConvCase {
  batch: number;
  size: [number, number];
  cin: number;
  kernel: number;
  cout: number;
  stride: 1 | 2;
  pad: "same" | "valid";
}

/** d/dx and d/dfilter of Σ w ⊙ conv2d(x, filter), with fixed weights w so that every output matters. */
async function convGradients(backend: string, c: ConvCase): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const xShape = [c.batch, c.size[0], c.size[1], c.cin] as const;
  const fShape = [c.kernel, c.kernel, c.cin, c.cout] as const;
  const x = tf.tensor4d(
    wave(
      xShape.reduce((a, b) => a * b),
      0.3,
    ),
    [...xShape],
  );
  const filter = tf.tensor4d(
    wave(
      fShape.reduce((a, b) => a * b),
      1.1,
    ),
    [...fShape],
  );
  const [dx, df] = tf.grads((a: tf.Tensor, f: tf.Tensor) => {
    const y = tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad);
    return y.mul(tf.tensor(wave(y.size, 2.7), y.shape)).sum();
  })([x, filter]) as [tf.Tensor, tf.Tensor];
  const out: [Float32Array, Float32Array] = [
    (await dx.data()) as Float32Array,
    (await df.data()) as Float32Array,
  ];
  tf.dispose([x, filter, dx, df]);
  return out;
}

/** The filter gradient of a stride-1 "same" conv by its definition, in float64: the reference for large cases. */
function filterGradientByHand(c: ConvCase): Float32Array {
  const [h, w] = c.size;
  const x = wave(c.batch * h * w * c.cin, 0.3);
  const dy = wave(c.batch * h * w * c.cout, 2.7);
  const top = Math.floor((c.kernel - 1) / 2);
  const dw = new Float64Array(c.kernel * c.kernel * c.cin * c.cout);
  for (let b = 0; b < c.batch; b++)
    for (let oy = 0; oy < h; oy++)
      for (let ox = 0; ox < w; ox++)
        for (let ky = 0; ky < c.kernel; ky++)
          for (let kx = 0; kx < c.kernel; kx++) {
            const iy = oy + ky - top;
            const ix = ox + kx - top;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            for (let ci = 0; ci < c.cin; ci++)
              for (let co = 0; co < c.cout; co++) {
                const at = ((ky * c.kernel + kx) * c.cin + ci) * c.cout + co;
                dw[at] =
                  (dw[at] as number) +
                  (x[((b * h + iy) * w + ix) * c.cin + ci] as number) *
                    (dy[((b * h + oy) * w + ox) * c.cout + co] as number);
              }
          }
  return Float32Array.from(dw);
}

beforeAll(async () => {
  useWasmFromNodeModules();
  expect(await tf.setBackend("wasm")).toBe(true);
});

describe("the wasm backend's training kernels", () => {
  it("has Conv2DBackpropInput and MaxPoolGrad of its own, and Conv2DBackpropFilter from fedward", () => {
    // Assert
    expect(tf.getKernel(tf.Conv2DBackpropInput, "wasm")).toBeDefined();
    expect(tf.getKernel(tf.MaxPoolGrad, "wasm")).toBeDefined();
    expect(tf.getKernel(tf.Conv2DBackpropFilter, "wasm")).toBeDefined();
  });

  const cases: ConvCase[] = [
    { batch: 2, size: [7, 6], cin: 3, kernel: 3, cout: 4, stride: 1, pad: "same" },
    { batch: 2, size: [7, 6], cin: 3, kernel: 3, cout: 4, stride: 2, pad: "same" },
    { batch: 3, size: [8, 8], cin: 1, kernel: 5, cout: 2, stride: 2, pad: "valid" },
    { batch: 1, size: [9, 9], cin: 3, kernel: 2, cout: 5, stride: 2, pad: "same" },
    { batch: 2, size: [6, 6], cin: 1, kernel: 3, cout: 2, stride: 1, pad: "valid" },
    { batch: 2, size: [11, 10], cin: 1, kernel: 4, cout: 3, stride: 2, pad: "valid" },
    { batch: 4, size: [5, 12], cin: 3, kernel: 1, cout: 3, stride: 2, pad: "same" },
  ];

  it.each(cases)(
    "give the cpu backend's conv gradients within 1e-4 (batch $batch, $size, cin $cin, kernel $kernel, cout $cout, stride $stride, $pad)",
    async (c) => {
      // Execute
      const [cpuDx, cpuDf] = await convGradients("cpu", c);
      await tf.setBackend("wasm");
      const before = tf.memory().numTensors;
      const [wasmDx, wasmDf] = await convGradients("wasm", c);

      // Assert
      expect(tf.getBackend()).toBe("wasm");
      expect(tf.memory().numTensors).toBe(before);
      expect(relativeError(wasmDf, cpuDf)).toBeLessThan(1e-4);
      expect(relativeError(wasmDx, cpuDx)).toBeLessThan(1e-4);
    },
  );

  it("splits a large filter gradient into chunks and still gets it right (64 × 32 × 32 × 8, kernel 3)", async () => {
    // Prepare: 64·32·32 = 65536 output pixels × 72 taps is over the 2^22 values of one chunk
    const c: ConvCase = { batch: 64, size: [32, 32], cin: 8, kernel: 3, cout: 2, stride: 1, pad: "same" };

    // Execute
    const [, wasmDf] = await convGradients("wasm", c);

    // Assert
    expect(relativeError(wasmDf, filterGradientByHand(c))).toBeLessThan(1e-5);
  });
});

/** Fixed batches of images (values in [0, 1]) with labels, the same on every backend. */
function fixedBatches(plan: Plan, batches: number, size: number): { x: Float32Array; y: Float32Array }[] {
  return Array.from({ length: batches }, (_, k) => ({
    x: wave(size * inputWidth(plan), k).map((v) => (v + 1) / 2),
    y: Float32Array.from({ length: size }, (_, i) => (i + k) % 2),
  }));
}

describe("a CNN trained on wasm", () => {
  it("ends one epoch at the weights the cpu backend reaches from the same start", async () => {
    // Prepare: stride 2, pools, same padding, two conv layers; 8 batches of 16
    const plan = imagePlan(
      { width: 12, height: 10, channels: 1 },
      {
        type: "cnn",
        conv: [
          { filters: 4, kernel: 3, pool: 2 },
          { filters: 6, kernel: 3, stride: 2 },
        ],
        dense: [8],
        activation: "relu",
      },
      { epochs: 1, batchSize: 16, optimizer: "sgd", learningRate: 0.5 },
    );
    const start = initialWeights(plan, new CryptoRandom(seededFill(91)));
    const data = fixedBatches(plan, 8, 16);
    const train = async (backend: string) => {
      await tf.setBackend(backend);
      const model = await buildModel(plan);
      writeWeights(model, plan, start);
      for (const b of data) {
        const x = tf.tensor(b.x, [16, 10, 12, 1]);
        const y = tf.tensor2d(b.y, [16, 1]);
        await model.trainOnBatch(x, y);
        tf.dispose([x, y]);
      }
      const weights = await readWeights(model);
      model.dispose();
      return weights;
    };

    // Execute
    const onCpu = await train("cpu");
    const onWasm = await train("wasm");

    // Assert: the two differ by far less than training moved the weights
    let moved = 0;
    let apart = 0;
    for (let i = 0; i < start.length; i++) {
      moved = Math.max(moved, Math.abs((onCpu[i] as number) - (start[i] as number)));
      apart = Math.max(apart, Math.abs((onWasm[i] as number) - (onCpu[i] as number)));
    }
    expect(moved).toBeGreaterThan(0.01);
    expect(apart).toBeLessThan(1e-4 * moved);
  });
});
