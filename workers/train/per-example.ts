import * as tf from "@tensorflow/tfjs";
import { inputShape, inputWidth, type Plan, paramCount, weightShapes } from "../../src/core/plan";
import { splitByShapes } from "../../src/core/vector";
import { bceWithLogits, forward, modelLayers, patches, preActivationShape } from "./dp/model-ops";
import {
  clippedLayerSum,
  type LayerNorms,
  type LayerTaps,
  layerNorms,
  type NormMethod,
  normCosts,
  unitLayout,
} from "./dp/norms";

/**
 * DP-SGD's per-unit clipping (Abadi et al. 2016, "Deep learning with differential privacy", Alg. 1) for
 * the plan's model: one forward and one backward pass over the batch, each unit's gradient norm from the
 * layers' inputs and pre-activation gradients (dp/norms.ts), and the clipped sum from the same tensors.
 */
export interface ClippedSum {
  /** Σ over units of min(1, clip·CLIP_SAFETY/||g_u||)·g_u, flat in the plan's weight order. */
  sum: Float32Array;
  /** ||g_u|| before clipping, per unit (0 for a unit with no example in the batch). */
  norms: Float32Array;
  /** Mean per-example BCE loss of the batch (0 for an empty batch). */
  loss: number;
}

/**
 * A clipped unit is scaled to clip·CLIP_SAFETY rather than clip. Its norm is computed in float32 in another
 * order (ghost norm or per-example gradient; summed over layers in float64) than the clipped sum, and than
 * any other implementation of the same gradient: they differ by float32 roundings, about √N·2^-24 for sums
 * of N terms. The tests see ghost and materialised norms agree to ~1e-7 relative, and the LayersModel's
 * own gradient (its BCE clips the sigmoid to [1e-7, 1 - 1e-7] and takes logits back, losing digits where
 * the sigmoid saturates) within 7e-6 on the demo plans. 2^-16 ≈ 1.5e-5 covers that, so that a clipped
 * unit's gradient stays within clip, the sensitivity the noise is calibrated to (an overshoot by a relative
 * δ would make it clip·(1 + δ)), at a utility cost nobody can measure.
 */
export const CLIP_SAFETY = 1 - 2 ** -16;

export interface PerExampleOptions {
  /** How every layer's norms are computed; "auto" (the default) takes the cheaper per layer. For tests. */
  method?: NormMethod | "auto";
}

/**
 * Logits [n, 1] of the plan's model (sigmoid of them is what the LayersModel of buildModel predicts) for
 * x [n, ...inputShape(plan)] or [n, inputWidth(plan)]. The caller disposes the result.
 */
export function forwardLogits(plan: Plan, weights: Float32Array, x: tf.Tensor): tf.Tensor2D {
  checkWeights(plan, weights);
  return tf.tidy(() =>
    forward(
      modelLayers(plan),
      weightTensors(plan, weights),
      tf.reshape(x, [x.shape[0] as number, ...inputShape(plan)]),
    ),
  );
}

/**
 * x: n·inputWidth floats, y: n labels in [0, 1], unitOf: n local unit indices in [0, n) (undefined: each
 * example its own unit); g_u is the sum over the unit's examples of the gradient of BCE(sigmoid(logit), y).
 * Every tensor it makes is disposed before it returns, and it reads back with `await data()` only (tfjs
 * 4.22's WebGPU dataSync() returned wrong values).
 */
export async function clippedGradientSum(
  plan: Plan,
  weights: Float32Array,
  x: Float32Array,
  y: Float32Array,
  unitOf: Uint32Array | undefined,
  clip: number,
  options: PerExampleOptions = {},
): Promise<ClippedSum> {
  const n = checkInputs(plan, weights, x, y, unitOf, clip);
  if (n === 0) return { sum: new Float32Array(paramCount(plan)), norms: new Float32Array(0), loss: 0 };
  const layers = modelLayers(plan);
  const layout = unitLayout(unitOf, n);
  const live: tf.Tensor[] = [];
  const hold = <T extends tf.Tensor>(t: T): T => {
    live.push(tf.keep(t));
    return t;
  };
  // The layers' inputs, kept past the tape's own tidy; only needed until their patches are taken.
  const inputs: tf.Tensor[] = [];
  try {
    const taps: LayerTaps[] = [];
    const norms: LayerNorms[] = [];
    const [squares, lossSum] = tf.tidy(() => {
      const params = weightTensors(plan, weights);
      const xs = tf.tensor(x, [n, ...inputShape(plan)]);
      const ys = tf.tensor2d(y, [n, 1]);
      // The gradient at each pre-activation is the gradient at a zero probe added to it (one backward
      // pass); the tape prunes the kernels, so no backend needs a conv backprop-filter kernel here.
      const probes = layers.map((layer) => tf.zeros(preActivationShape(layer, n)));
      const { value, grads } = tf.valueAndGrads((...probe: tf.Tensor[]) => {
        const logits = forward(layers, params, xs, (i, a, z) => {
          inputs[i] = tf.keep(a);
          return tf.add(z, probe[i] as tf.Tensor);
        });
        return tf.sum(bceWithLogits(logits, ys)) as tf.Scalar;
      })(probes);
      layers.forEach((layer, i) => {
        const a = inputs[i] as tf.Tensor;
        const g = grads[i] as tf.Tensor;
        const tap: LayerTaps =
          layer.kind === "dense"
            ? { p: tf.reshape(a, [n, 1, layer.inputs]), g: tf.reshape(g, [n, 1, layer.units]) }
            : {
                p: patches(layer, a as tf.Tensor4D),
                g: tf.reshape(g, [n, layer.outHeight * layer.outWidth, layer.filters]),
              };
        taps.push({ p: hold(tap.p), g: hold(tap.g) });
        const shape = { n, positions: tap.p.shape[1], inputs: tap.p.shape[2], outputs: tap.g.shape[2] };
        const costs = normCosts(shape, layout);
        const auto: NormMethod = costs.ghost <= costs.materialised ? "ghost" : "materialised";
        const method = options.method === undefined || options.method === "auto" ? auto : options.method;
        const layerNorm = layerNorms(tap, layout, method);
        if (layerNorm.perExample) hold(layerNorm.perExample);
        norms.push(layerNorm);
      });
      return [tf.stack(norms.flatMap((l) => [l.kernel, l.bias])), value];
    });
    live.push(squares, lossSum);
    tf.dispose(inputs);
    const [squareValues, lossValue] = await Promise.all([squares.data(), lossSum.data()]);
    const unitNorms = normsPerUnit(squareValues as Float32Array, layout);
    const factors = clipFactors(unitNorms, unitOf, clip);
    const flat = tf.tidy(() => {
      const perExample = tf.tensor1d(factors);
      return tf.concat(taps.flatMap((tap, i) => clippedLayerSum(tap, norms[i] as LayerNorms, perExample)));
    });
    live.push(flat);
    const sum = (await flat.data()) as Float32Array;
    return { sum, norms: unitNorms, loss: (lossValue[0] as number) / n };
  } finally {
    tf.dispose(inputs);
    tf.dispose(live);
  }
}

/** ||g_u|| from the [2·layers, groups] squared norms of every kernel and bias, summed in float64. */
function normsPerUnit(squares: Float32Array, layout: ReturnType<typeof unitLayout>): Float32Array {
  const { groups, groupUnit } = layout;
  const out = new Float32Array(layout.units);
  const parts = squares.length / groups;
  for (let g = 0; g < groups; g++) {
    let total = 0;
    for (let r = 0; r < parts; r++) total += squares[r * groups + g] as number;
    out[groupUnit[g] as number] = Math.sqrt(total);
  }
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new RangeError(
      `The gradient of unit ${bad} overflowed (its norm is ${out[bad]}): the model's weights or inputs are ` +
        "too large for float32; restart the federation with a smaller learning rate.",
    );
  return out;
}

/** c_u = min(1, clip·CLIP_SAFETY / ||g_u||) per unit, then per example as its unit's. */
function clipFactors(norms: Float32Array, unitOf: Uint32Array | undefined, clip: number): Float32Array {
  const target = clip * CLIP_SAFETY;
  const perUnit = Array.from(norms, (norm) => (norm > target ? target / norm : 1));
  return unitOf ? Float32Array.from(unitOf, (u) => perUnit[u] as number) : Float32Array.from(perUnit);
}

/** Kernel and bias tensors of every layer, views of `weights` (disposed by the caller's tidy). */
function weightTensors(plan: Plan, weights: Float32Array): tf.Tensor[] {
  const shapes = weightShapes(plan);
  return splitByShapes(weights, shapes).map((part, i) => tf.tensor(part, shapes[i], "float32"));
}

function checkWeights(plan: Plan, weights: Float32Array): void {
  const needed = paramCount(plan);
  if (weights.length !== needed)
    throw new RangeError(`The model has ${weights.length} weights; the plan's model needs ${needed}.`);
  const bad = weights.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new RangeError(`Weight ${bad} of the model is ${weights[bad]}; every weight must be finite.`);
}

/** Checks every length and value; returns the number of examples n. */
function checkInputs(
  plan: Plan,
  weights: Float32Array,
  x: Float32Array,
  y: Float32Array,
  unitOf: Uint32Array | undefined,
  clip: number,
): number {
  checkWeights(plan, weights);
  if (!(clip > 0 && Number.isFinite(clip)))
    throw new RangeError(`The clip norm is ${clip}; it must be a positive finite number.`);
  const n = y.length;
  const width = inputWidth(plan);
  if (x.length !== n * width)
    throw new RangeError(
      `x has ${x.length} values, but ${n} examples (the length of y) of ${width} inputs need ${n * width}.`,
    );
  const badX = x.findIndex((v) => !Number.isFinite(v));
  if (badX >= 0)
    throw new RangeError(
      `Input ${badX % width} of example ${Math.floor(badX / width)} is ${x[badX]}; inputs must be finite.`,
    );
  const badY = y.findIndex((v) => !(v >= 0 && v <= 1));
  if (badY >= 0)
    throw new RangeError(`The label of example ${badY} is ${y[badY]}; labels must lie in [0, 1].`);
  if (unitOf !== undefined) {
    if (unitOf.length !== n)
      throw new RangeError(`unitOf has ${unitOf.length} entries, but the batch has ${n} examples (y).`);
    const badUnit = unitOf.findIndex((u) => u >= n);
    if (badUnit >= 0)
      throw new RangeError(
        `Example ${badUnit} belongs to unit ${unitOf[badUnit]}, but a batch of ${n} examples numbers its ` +
          `units 0 to ${n - 1}: renumber the batch's units locally (0, 1, 2, ... in order of appearance).`,
      );
  }
  return n;
}
