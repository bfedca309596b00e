import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../../src/core/plan";
import { chooseBackend } from "../../../workers/train/backends";
import { benchTrain, measureTraining } from "../../../workers/train/throughput";
import { demoPlanJson } from "../core/support";
import { imagePlan } from "./image-plans";
import { useWasmFromNodeModules } from "./wasm-node";

/**
 * Backend choice in Node: no WebGPU adapter and no WebGL here, so wasm and cpu are the candidates, as in a
 * browser without a GPU. The app's .wasm URLs (Vite's) do not resolve in Node: point tfjs at node_modules.
 */
const cnn = imagePlan(
  { width: 16, height: 16, channels: 1 },
  {
    type: "cnn",
    conv: [
      { filters: 4, kernel: 3, pool: 2 },
      { filters: 8, kernel: 3, pool: 2 },
    ],
    dense: [8],
    activation: "relu",
  },
);

beforeAll(() => {
  useWasmFromNodeModules();
});

describe("chooseBackend", () => {
  it("measures a CNN plan's own model and picks wasm, leaving out cpu's slow conv gradient", async () => {
    // Execute
    const choice = await chooseBackend(cnn, "auto");

    // Assert
    expect(choice.backend).toBe("wasm");
    expect(tf.getBackend()).toBe("wasm");
    const byName = Object.fromEntries(choice.measurements.map((m) => [m.backend, m]));
    expect(byName.webgpu?.note).toBe("no WebGPU adapter");
    expect(byName.wasm?.examplesPerSecond).toBeGreaterThan(0);
    expect(byName.cpu?.examplesPerSecond).toBeUndefined();
    expect(byName.cpu?.note).toMatch(/not measured for a CNN/);
    expect(choice.reason).toMatch(/^webgpu skipped \(no WebGPU adapter\); measured wasm \d+ examples\/s$/);
  });

  it("measures both wasm and cpu for an MLP plan and picks the faster", async () => {
    // Prepare
    const mlp = parsePlan(demoPlanJson());

    // Execute
    const choice = await chooseBackend(mlp, "auto");

    // Assert
    const measured = choice.measurements.filter((m) => m.examplesPerSecond !== undefined);
    expect(measured.map((m) => m.backend)).toEqual(["wasm", "cpu"]);
    const fastest = measured.reduce((a, b) =>
      (b.examplesPerSecond ?? 0) > (a.examplesPerSecond ?? 0) ? b : a,
    );
    expect(choice.backend).toBe(fastest.backend);
  });

  it("uses a forced backend as asked, without measuring", async () => {
    // Execute
    const choice = await chooseBackend(cnn, "cpu");

    // Assert
    expect(choice).toMatchObject({ backend: "cpu", reason: "forced by setting", measurements: [] });
    expect(tf.getBackend()).toBe("cpu");
  });
});

describe("measureTraining and benchTrain", () => {
  it("train the plan's CNN on [n, 16, 16, 1] batches for the steps asked and free every tensor", async () => {
    // Prepare
    await tf.setBackend("wasm");
    const tensors = tf.memory().numTensors;

    // Execute
    const fixed = await measureTraining(cnn, { budgetMs: 0, minSteps: 3, maxSteps: 3 });
    const budgeted = await measureTraining(cnn, { budgetMs: 1e9, minSteps: 1, maxSteps: 4, batchSize: 5 });

    // Assert
    expect(fixed.steps).toBe(3);
    expect(budgeted.steps).toBe(4);
    expect(fixed.examplesPerSecond).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it("benchTrain reports the median of its runs on the backend asked", async () => {
    // Prepare
    await tf.setBackend("wasm");

    // Execute
    const result = await benchTrain(parsePlan(demoPlanJson()), "cpu", {
      steps: 2,
      repeats: 3,
      batchSize: 16,
    });

    // Assert
    expect(tf.getBackend()).toBe("cpu");
    expect(result.runs).toHaveLength(3);
    expect(result.examplesPerSecond).toBe([...result.runs].sort((a, b) => a - b)[1]);
  });
});
