import { DEFAULT_MOMENTUM, type Plan } from "./plan";

/** tf.train.adam's defaults: moment decay rates, and epsilon added to sqrt(v_hat) outside the root. */
export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
export const ADAM_EPSILON = 1e-7;

/** Updates the weights in place from one (noised) gradient; its state lives in float64. */
export interface Optimizer {
  step(weights: Float32Array, grad: Float32Array): void;
}

/**
 * The plan's optimizer on flat weight vectors, for DP-SGD's noised gradients (post-processing: no privacy
 * cost). A fresh one per round, as tfjs gets a fresh optimizer per fit (workers/train/model.ts):
 * - sgd: w -= lr g;
 * - momentum: heavy ball as torch.optim.SGD and tf.train.momentum without Nesterov: v = mu v + g, w -= lr v;
 * - adam: Kingma & Ba 2015, Alg. 1, as tf.train.adam (b1 0.9, b2 0.999, eps 1e-7):
 *   m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 */
export function createOptimizer(training: Plan["training"], numWeights: number): Optimizer {
  if (!(Number.isSafeInteger(numWeights) && numWeights >= 1))
    throw new RangeError(`An optimizer needs at least one weight, got ${numWeights}.`);
  const lr = training.learningRate;
  const check = (weights: Float32Array, grad: Float32Array) => {
    if (weights.length !== numWeights || grad.length !== numWeights)
      throw new RangeError(
        `The optimizer was made for ${numWeights} weights but got ${weights.length} weights and ` +
          `${grad.length} gradient values; this is a bug in fedward.`,
      );
  };
  if (training.optimizer === "sgd")
    return {
      step(weights, grad) {
        check(weights, grad);
        for (let i = 0; i < numWeights; i++) weights[i] = (weights[i] as number) - lr * (grad[i] as number);
      },
    };
  if (training.optimizer === "momentum") {
    const mu = training.momentum ?? DEFAULT_MOMENTUM;
    const velocity = new Float64Array(numWeights);
    return {
      step(weights, grad) {
        check(weights, grad);
        for (let i = 0; i < numWeights; i++) {
          const v = mu * (velocity[i] as number) + (grad[i] as number);
          velocity[i] = v;
          weights[i] = (weights[i] as number) - lr * v;
        }
      },
    };
  }
  const m = new Float64Array(numWeights);
  const v = new Float64Array(numWeights);
  let t = 0;
  return {
    step(weights, grad) {
      check(weights, grad);
      t++;
      const c1 = 1 - ADAM_BETA1 ** t;
      const c2 = 1 - ADAM_BETA2 ** t;
      for (let i = 0; i < numWeights; i++) {
        const g = grad[i] as number;
        const mi = ADAM_BETA1 * (m[i] as number) + (1 - ADAM_BETA1) * g;
        const vi = ADAM_BETA2 * (v[i] as number) + (1 - ADAM_BETA2) * g * g;
        m[i] = mi;
        v[i] = vi;
        weights[i] = (weights[i] as number) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + ADAM_EPSILON);
      }
    },
  };
}
