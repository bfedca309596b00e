import * as tf from "@tensorflow/tfjs";
import { modelTopology } from "../../src/core/model-format";
import { type Plan, paramCount, weightShapes } from "../../src/core/plan";
import { concat, splitByShapes } from "../../src/core/vector";

/** Builds the plan's model from the same topology JSON the coordinator publishes, and compiles it. */
export async function buildModel(plan: Plan): Promise<tf.LayersModel> {
  const model = await tf.models.modelFromJSON({
    modelTopology: modelTopology(plan),
  } as unknown as tf.io.ModelJSON);
  resetOptimizer(model, plan);
  return model;
}

/**
 * A fresh optimizer for every fit: Adam's moments from an earlier round must not carry over, so that a
 * site's update depends only on the global weights and its data (Flower's fit(parameters, config)).
 */
export function resetOptimizer(model: tf.LayersModel, plan: Plan): void {
  const old = model.optimizer as tf.Optimizer | undefined;
  const optimizer =
    plan.training.optimizer === "adam"
      ? tf.train.adam(plan.training.learningRate)
      : tf.train.sgd(plan.training.learningRate);
  model.compile({ optimizer, loss: "binaryCrossentropy" });
  old?.dispose();
}

/** model.dispose() leaves an optimizer passed in as an instance alive (tfjs: isOptimizerOwned = false). */
export function disposeModel(model: tf.LayersModel): void {
  const optimizer = model.optimizer as tf.Optimizer | undefined;
  model.dispose();
  optimizer?.dispose();
}

/**
 * Snapshot of all weights as one Float32Array copy, read with `await data()` only: on tfjs 4.22's WebGPU
 * backend dataSync() returned wrong values and once lost the device.
 */
export async function readWeights(model: tf.LayersModel): Promise<Float32Array> {
  const parts = await Promise.all(model.getWeights().map((w) => w.data() as Promise<Float32Array>));
  return concat(parts);
}

export function writeWeights(model: tf.LayersModel, plan: Plan, flat: Float32Array): void {
  const needed = paramCount(plan);
  if (flat.length !== needed) {
    throw new RangeError(`The global model has ${flat.length} weights; the plan's model needs ${needed}.`);
  }
  const shapes = weightShapes(plan);
  // Copies: a backend may keep the array it was given, and `flat` belongs to the caller.
  const tensors = splitByShapes(flat, shapes).map((part, i) => tf.tensor(part.slice(), shapes[i], "float32"));
  model.setWeights(tensors);
  tf.dispose(tensors);
}
