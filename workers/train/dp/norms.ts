import * as tf from "@tensorflow/tfjs";

/**
 * Per-unit gradient norms of one weight layer from its input activations and the gradient at its
 * pre-activation, never materialising a gradient per example unless that is the cheaper way.
 *
 * Every layer is written as a conv: example i has T positions (T = 1 for Dense), patch rows P_i [T, k]
 * (the layer's input, im2col for a conv) and output gradients G_i [T, c]; its kernel gradient is P_iᵀG_i
 * and its bias gradient Σ_p G_{i,p}. A unit's gradient is the sum over its examples, so stacking a unit's
 * examples' positions (m·T rows) makes the unit one "example" of the same formulas.
 */
export type NormMethod = "ghost" | "materialised";

export interface UnitLayout {
  /** Units (max index + 1); a unit with no example in the batch has gradient 0. */
  units: number;
  /** Groups the norms are computed for: the examples when every unit has one, else the units present. */
  groups: number;
  /** Most examples of one unit in the batch (m). */
  size: number;
  /** The unit of each group. */
  groupUnit: Uint32Array;
  /** [groups·size] example index of each slot, n for an empty one; undefined when size = 1. */
  slots: Int32Array | undefined;
}

export function unitLayout(unitOf: Uint32Array | undefined, n: number): UnitLayout {
  if (unitOf === undefined) {
    const groupUnit = new Uint32Array(n).map((_, i) => i);
    return { units: n, groups: n, size: n > 0 ? 1 : 0, groupUnit, slots: undefined };
  }
  let units = 0;
  for (const u of unitOf) units = Math.max(units, u + 1);
  const counts = new Uint32Array(units);
  for (const u of unitOf) counts[u] = (counts[u] as number) + 1;
  const size = counts.reduce((a, b) => Math.max(a, b), 0);
  if (size <= 1) return { units, groups: n, size, groupUnit: unitOf, slots: undefined };
  const groupOf = new Int32Array(units).fill(-1);
  const present: number[] = [];
  for (let u = 0; u < units; u++)
    if ((counts[u] as number) > 0) {
      groupOf[u] = present.length;
      present.push(u);
    }
  const slots = new Int32Array(present.length * size).fill(n);
  const filled = new Uint32Array(present.length);
  unitOf.forEach((u, i) => {
    const g = groupOf[u] as number;
    slots[g * size + (filled[g] as number)] = i;
    filled[g] = (filled[g] as number) + 1;
  });
  return { units, groups: present.length, size, groupUnit: Uint32Array.from(present), slots };
}

/** One weight layer's taps: patches P [n, T, k] and pre-activation gradients G [n, T, c]. */
export interface LayerTaps {
  p: tf.Tensor3D;
  g: tf.Tensor3D;
}

/**
 * Multiply-adds of each way (Bu et al. 2022, "Scalable and efficient training of large convolutional
 * neural networks with differential privacy", §3: ghost norm costs ~2T² per example against T·k·c for the
 * per-example gradient, "mixed ghost clipping" takes the cheaper per layer). With units of up to m
 * examples the ghost Gram is (m·T)² per unit; the materialised way sums the examples' gradients per unit.
 */
export function normCosts(
  shape: { n: number; positions: number; inputs: number; outputs: number },
  layout: Pick<UnitLayout, "groups" | "size">,
): Record<NormMethod, number> {
  const { n, positions: t, inputs: k, outputs: c } = shape;
  const { groups, size: m } = layout;
  const rows = m * t;
  const ghost = rows === 1 ? n * (k + c) : groups * rows * rows * (k + c + 1);
  const materialised = n * t * k * c + (m > 1 ? groups * m * k * c : 0) + groups * k * c;
  return { ghost, materialised };
}

export interface LayerNorms {
  /** Squared norm of each group's kernel and bias gradient, [groups] each. */
  kernel: tf.Tensor1D;
  bias: tf.Tensor1D;
  /** The per-example kernel gradients [n, k, c] when they were materialised (reused for the clipped sum). */
  perExample: tf.Tensor3D | undefined;
}

/** Rows of `t` [n, ...] gathered into [groups, size, ...], zeros in empty slots. */
function gatherSlots(t: tf.Tensor, slots: tf.Tensor1D, layout: UnitLayout): tf.Tensor {
  const [, ...rest] = t.shape;
  const padded = tf.concat([t, tf.zeros([1, ...rest])], 0);
  return tf.reshape(tf.gather(padded, slots), [layout.groups, layout.size, ...rest]);
}

/** Squared L2 norm over every axis but the first. */
function squaredNorms(t: tf.Tensor): tf.Tensor1D {
  const axes = t.shape.map((_, i) => i).slice(1);
  return tf.sum(tf.square(t), axes) as tf.Tensor1D;
}

export function layerNorms(taps: LayerTaps, layout: UnitLayout, method: NormMethod): LayerNorms {
  const { p, g } = taps;
  const [, t, k] = p.shape;
  const c = g.shape[2];
  const slots = layout.slots ? tf.tensor1d(layout.slots, "int32") : undefined;
  const perUnit = (x: tf.Tensor): tf.Tensor => (slots ? tf.sum(gatherSlots(x, slots, layout), 1) : x);
  const bias = squaredNorms(perUnit(tf.sum(g, 1)));
  if (method === "materialised") {
    const perExample = tf.matMul(p, g, true, false) as tf.Tensor3D;
    return { kernel: squaredNorms(perUnit(perExample)), bias, perExample };
  }
  if (t === 1 && !slots) {
    // Goodfellow 2015, "Efficient per-example gradient computations": ||a_i g_iᵀ||² = ||a_i||²·||g_i||².
    return { kernel: tf.mul(squaredNorms(p), squaredNorms(g)), bias, perExample: undefined };
  }
  // Ghost norm (Li et al. 2021, "Large language models can be strong differentially private learners",
  // §4; Bu et al. 2022 for convs): ||Σ_r P_rᵀ G_r||² = Σ_{r,r'} (P_r·P_r')(G_r·G_r') over the unit's rows.
  const rows = layout.size * t;
  const stack = (x: tf.Tensor, width: number) =>
    slots ? tf.reshape(gatherSlots(x, slots, layout), [layout.groups, rows, width]) : x;
  const pu = stack(p, k) as tf.Tensor3D;
  const gu = stack(g, c) as tf.Tensor3D;
  const gram = tf.mul(tf.matMul(pu, pu, false, true), tf.matMul(gu, gu, false, true));
  return { kernel: tf.sum(gram, [1, 2]) as tf.Tensor1D, bias, perExample: undefined };
}

/**
 * The layer's clipped kernel and bias sums, flat: Σ_i c_i P_iᵀG_i and Σ_i c_i Σ_p G_{i,p}, with c_i the clip
 * factor of example i's unit. Linear in the taps, so it needs no second backward pass.
 */
export function clippedLayerSum(taps: LayerTaps, norms: LayerNorms, factors: tf.Tensor1D): tf.Tensor1D[] {
  const { p, g } = taps;
  const [n, t, k] = p.shape;
  const c = g.shape[2];
  const row = tf.reshape(factors, [1, n]);
  const bias = tf.reshape(tf.matMul(row, tf.sum(g, 1)), [c]) as tf.Tensor1D;
  const kernel = norms.perExample
    ? tf.matMul(row, tf.reshape(norms.perExample, [n, k * c]))
    : tf.matMul(
        tf.reshape(p, [n * t, k]),
        tf.reshape(tf.mul(g, tf.reshape(factors, [n, 1, 1])), [n * t, c]),
        true,
        false,
      );
  return [tf.reshape(kernel, [k * c]) as tf.Tensor1D, bias];
}
