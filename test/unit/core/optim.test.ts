import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createOptimizer } from "../../../src/core/optim";
import type { Plan } from "../../../src/core/plan";
import { CryptoRandom } from "../../../src/core/random";
import { seededFill } from "./support";

type Training = Plan["training"];

/** Uniform floats in [-scale, scale) from the seeded test source (TESTS ONLY). */
function randomVector(rng: CryptoRandom, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.uint32() / 2 ** 32) * 2 * scale - scale);
}

/** The same steps through tfjs's optimizer on one variable (cpu backend). */
function tfjsSteps(optimizer: tf.Optimizer, start: Float32Array, grads: Float32Array[]): Float32Array {
  const w = tf.variable(tf.tensor1d(start));
  for (const g of grads) {
    const grad = tf.tensor1d(g);
    optimizer.applyGradients({ [w.name]: grad });
    grad.dispose();
  }
  const out = w.dataSync() as Float32Array;
  w.dispose();
  optimizer.dispose();
  return Float32Array.from(out);
}

function ourSteps(training: Training, start: Float32Array, grads: Float32Array[]): Float32Array {
  const w = Float32Array.from(start);
  const optimizer = createOptimizer(training, w.length);
  for (const g of grads) optimizer.step(w, g);
  return w;
}

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe("createOptimizer by hand", () => {
  it("sgd: w -= lr g", () => {
    // Prepare
    const w = Float32Array.of(1, -2);
    const optimizer = createOptimizer({ optimizer: "sgd", learningRate: 0.5 }, 2);

    // Execute
    optimizer.step(w, Float32Array.of(0.25, 4));

    // Assert
    expect([...w]).toEqual([0.875, -4]);
  });

  it("momentum: v = mu v + g, w -= lr v (heavy ball, first v = g, as torch.optim.SGD)", () => {
    // Prepare
    const w = Float32Array.of(0);
    const optimizer = createOptimizer({ optimizer: "momentum", learningRate: 0.5, momentum: 0.5 }, 1);

    // Execute and Assert: v = 1, then 0.5 + 1 = 1.5, then 0.75 + 2 = 2.75
    optimizer.step(w, Float32Array.of(1));
    expect(w[0]).toBe(-0.5);
    optimizer.step(w, Float32Array.of(1));
    expect(w[0]).toBe(-1.25);
    optimizer.step(w, Float32Array.of(2));
    expect(w[0]).toBe(-2.625);
  });

  it("momentum defaults to mu = 0.9", () => {
    // Prepare
    const w = Float32Array.of(0);
    const optimizer = createOptimizer({ optimizer: "momentum", learningRate: 1 }, 1);

    // Execute
    optimizer.step(w, Float32Array.of(1));
    optimizer.step(w, Float32Array.of(1));

    // Assert: v = 1, then 1.9
    expect(w[0]).toBeCloseTo(-2.9, 6);
  });

  it("adam: the first step is lr g / (|g| + eps) and the second uses bias-corrected moments", () => {
    // Prepare
    const w = Float32Array.of(0, 0);
    const optimizer = createOptimizer({ optimizer: "adam", learningRate: 0.1 }, 2);

    // Execute
    optimizer.step(w, Float32Array.of(2, -0.5));
    const first = [...w];
    optimizer.step(w, Float32Array.of(1, -0.5));

    // Assert: m_hat = g, v_hat = g^2 after one step
    expect(first[0]).toBeCloseTo(-0.1 * (2 / (2 + 1e-7)), 7);
    expect(first[1]).toBeCloseTo(0.1 * (0.5 / (0.5 + 1e-7)), 7);
    // step 2: m = 0.9 * 0.2 + 0.1 * 1 = 0.28, v = 0.999 * 0.004 + 0.001 * 1 = 0.004996
    const mHat = 0.28 / (1 - 0.81);
    const vHat = 0.004996 / (1 - 0.999 ** 2);
    expect(w[0]).toBeCloseTo((first[0] as number) - (0.1 * mHat) / (Math.sqrt(vHat) + 1e-7), 6);
    // a constant gradient gives steps of lr exactly (up to eps)
    expect(w[1]).toBeCloseTo((first[1] as number) + 0.1, 6);
  });

  it("refuses vectors of another length", () => {
    const optimizer = createOptimizer({ optimizer: "sgd", learningRate: 1 }, 3);
    expect(() => optimizer.step(new Float32Array(2), new Float32Array(2))).toThrow(/made for 3 weights/);
  });
});

describe("createOptimizer against tfjs (cpu) on the same gradients", () => {
  const n = 64;
  const rng = new CryptoRandom(seededFill(21));
  const start = randomVector(rng, n, 0.25);
  const grads = Array.from({ length: 25 }, (_, t) => randomVector(rng, n, 0.5 + t / 10));

  it.each<[string, Training, () => tf.Optimizer]>([
    ["sgd", { optimizer: "sgd", learningRate: 0.3 }, () => tf.train.sgd(0.3)],
    [
      "momentum 0.7",
      { optimizer: "momentum", learningRate: 0.05, momentum: 0.7 },
      () => tf.train.momentum(0.05, 0.7),
    ],
    ["momentum default", { optimizer: "momentum", learningRate: 0.05 }, () => tf.train.momentum(0.05, 0.9)],
    // tfjs keeps b2^t in float32, so its 1 - b2^t is 1.3e-5 low (relative) and each of its steps 6.5e-6
    // long: a small learning rate keeps that within 1e-6 after 25 steps (our moments are float64).
    ["adam", { optimizer: "adam", learningRate: 0.004 }, () => tf.train.adam(0.004)],
  ])("%s matches to 1e-6", (_name, training, make) => {
    // Execute
    const ours = ourSteps(training, start, grads);
    const theirs = tfjsSteps(make(), start, grads);

    // Assert
    for (let i = 0; i < n; i++)
      expect(Math.abs((ours[i] as number) - (theirs[i] as number))).toBeLessThan(1e-6);
    // and the optimizer moved the weights (a test that cannot fail is worse than none)
    expect(Math.abs((ours[0] as number) - (start[0] as number))).toBeGreaterThan(1e-3);
  });
});
