import * as tf from "@tensorflow/tfjs";
import { type CnnModel, inputShape, inputWidth, type Plan } from "../../../src/core/plan";

/**
 * The plan's model (src/core/model-format.ts modelTopology, built by workers/train/model.ts buildModel) as
 * raw tf ops, so that DP-SGD can tap every layer's input and the gradient at its pre-activation. Weights
 * are in the LayersModel's getWeights() order: kernel then bias per Conv2D/Dense layer, in layer order.
 */
export type Activation = Plan["model"]["activation"] | "linear";

export interface ConvLayer {
  kind: "conv";
  kernel: number;
  stride: 1 | 2;
  inChannels: number;
  filters: number;
  /** MaxPooling2D(pool×pool, stride pool, "valid") after the activation. */
  pool: number | undefined;
  /** The conv's input [height, width] and its output before pooling ("same": ceil(n / stride)). */
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  activation: Activation;
}

export interface DenseLayer {
  kind: "dense";
  inputs: number;
  units: number;
  activation: Activation;
}

export type Layer = ConvLayer | DenseLayer;

/** The model's weight layers; an image plan's Dense layers see the flattened (H, W, C) input. */
export function modelLayers(plan: Plan): Layer[] {
  const layers: Layer[] = [];
  const model = plan.model;
  let width = inputWidth(plan);
  if (model.type === "cnn") {
    const [height0, width0, channels0] = inputShape(plan) as [number, number, number];
    let h = height0;
    let w = width0;
    let channels = channels0;
    for (const c of model.conv as CnnModel["conv"]) {
      const stride = c.stride ?? 1;
      const outHeight = Math.ceil(h / stride);
      const outWidth = Math.ceil(w / stride);
      layers.push({
        kind: "conv",
        kernel: c.kernel,
        stride,
        inChannels: channels,
        filters: c.filters,
        pool: c.pool,
        inHeight: h,
        inWidth: w,
        outHeight,
        outWidth,
        activation: model.activation,
      });
      h = c.pool === undefined ? outHeight : Math.floor(outHeight / c.pool);
      w = c.pool === undefined ? outWidth : Math.floor(outWidth / c.pool);
      channels = c.filters;
    }
    width = h * w * channels;
  }
  const hidden = model.type === "mlp" ? model.hidden : model.dense;
  [...hidden, 1].forEach((units, i) => {
    const last = i === hidden.length;
    layers.push({ kind: "dense", inputs: width, units, activation: last ? "linear" : model.activation });
    width = units;
  });
  return layers;
}

/** Shape of a layer's pre-activation output for a batch of n. */
export function preActivationShape(layer: Layer, n: number): number[] {
  return layer.kind === "dense" ? [n, layer.units] : [n, layer.outHeight, layer.outWidth, layer.filters];
}

/** As tfjs-layers applies them (activations.ts; elu has alpha 1 there, tf.elu). */
function activate(z: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case "relu":
      return tf.relu(z);
    case "tanh":
      return tf.tanh(z);
    case "sigmoid":
      return tf.sigmoid(z);
    case "elu":
      return tf.elu(z);
    case "linear":
      return z;
  }
}

/** Called with each weight layer's input and returning the pre-activation to continue with. */
export type Tap = (index: number, input: tf.Tensor, preActivation: tf.Tensor) => tf.Tensor;

/**
 * Logits [n, 1] for x [n, ...inputShape]. params: kernel and bias tensors, two per layer. `tap` sees each
 * weight layer's input and may replace its pre-activation (DP-SGD adds a zero probe there).
 */
export function forward(layers: Layer[], params: tf.Tensor[], x: tf.Tensor, tap?: Tap): tf.Tensor2D {
  const n = x.shape[0] as number;
  let a = x;
  layers.forEach((layer, i) => {
    const kernel = params[2 * i] as tf.Tensor;
    const bias = params[2 * i + 1] as tf.Tensor;
    let z: tf.Tensor;
    if (layer.kind === "conv") {
      z = tf.add(convSame(a as tf.Tensor4D, kernel as tf.Tensor4D, layer), bias);
    } else {
      // Flatten (channels_last) is a reshape; a tabular batch is already [n, inputs].
      if (a.rank !== 2) a = tf.reshape(a, [n, layer.inputs]);
      z = tf.add(tf.matMul(a as tf.Tensor2D, kernel as tf.Tensor2D), bias);
    }
    if (tap) z = tap(i, a, z);
    a = activate(z, layer.activation);
    if (layer.kind === "conv" && layer.pool !== undefined)
      a = tf.maxPool(a as tf.Tensor4D, layer.pool, layer.pool, "valid");
  });
  return a as tf.Tensor2D;
}

/**
 * tf.conv2d(x, kernel, stride, "same"). On tfjs-backend-wasm 4.22 the gradient of a conv's input
 * (Conv2DBackpropInput) is a plain loop, 3-4 times slower than its XNNPACK Conv2D of the same size (the bench
 * CNN's 14×14×16 → 8 at batch 32: 4.8 ms against 1.3 ms); at stride 1 with an odd kernel ("same" then pads
 * (k - 1)/2 on every side) that gradient is the "same" conv of dy with the kernel rotated by 180° and its
 * channel axes swapped (the transposed convolution: Dumoulin & Visin 2016, "A guide to convolution
 * arithmetic for deep learning", §4.1), so there it is computed as that conv. The kernel is a constant of
 * that gradient, which is all DP-SGD's tape needs (it differentiates the probes only): on wasm, tf.grads
 * with respect to a kernel through forward() throws (tfjs finds no path) and tf.variableGrads leaves the
 * kernel out of its result; differentiate the LayersModel of buildModel for weight gradients.
 */
function convSame(x: tf.Tensor4D, kernel: tf.Tensor4D, layer: ConvLayer): tf.Tensor4D {
  if (tf.getBackend() !== "wasm" || layer.stride !== 1 || layer.kernel % 2 === 0)
    return tf.conv2d(x, kernel, layer.stride, "same");
  const conv = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.conv2d(inputs[0] as tf.Tensor4D, kernel, 1, "same"),
    gradFunc: (dy: tf.Tensor) =>
      tf.conv2d(
        dy as tf.Tensor4D,
        tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D,
        1,
        "same",
      ),
  }));
  return conv(x) as tf.Tensor4D;
}

/**
 * Per-example binary cross-entropy of sigmoid(z) against y, in the stable logit form
 * max(z, 0) - z·y + log(1 + exp(-|z|)) (as tf.losses.sigmoidCrossEntropy computes it).
 */
export function bceWithLogits(z: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
}

/**
 * Most im2col columns (kernel²·inChannels) for which a one-hot conv makes the patches, per backend; above
 * it, one gather. The conv costs columns² multiply-adds per patch row against the gather's columns copies,
 * but the backends' gathers are slow (about 45 ns a value on tfjs-backend-wasm 4.22 and 60 ns on cpu,
 * against 0.1 ns and 2 ns a multiply-add for their convs). Measured at batch 32 (test/bench/dp-sgd.ts's CNN):
 * wasm 28×28×1 → 9 columns 0.9 ms against 8.4 ms, 14×14×8 → 72 columns 3.5 ms against 19 ms; cpu 9 columns
 * 5.6 ms against 16 ms, 72 columns 66 ms against 26 ms.
 */
const ONE_HOT_MAX_COLUMNS: Record<string, number> = { cpu: 24 };
const ONE_HOT_MAX_COLUMNS_ELSEWHERE = 256;

/**
 * im2col of a conv layer's input: [n, outHeight·outWidth, kernel·kernel·inChannels], the patch of output
 * pixel (oy, ox) at column (ky·kernel + kx)·inChannels + ci, which is the row-major order of the kernel's
 * [kernel, kernel, inChannels] axes, so patchesᵀ·g reshapes straight into the kernel's shape. Exact copies
 * either way, zeros in the padding: a conv with the one-hot kernel of that column order (each output is one
 * product x·1 plus products x·0 = ±0, exact in any order of summation, FMA or not), or for many columns
 * one gather from the input padded as tfjs pads "same" (conv_util getPadAndOutInfo: the odd pixel goes
 * bottom/right), as many values as the patches (one strided slice per tap was 5-10 times slower on
 * tfjs-backend-cpu).
 */
export function patches(layer: ConvLayer, a: tf.Tensor4D): tf.Tensor3D {
  const { kernel: k, stride: s, inHeight, inWidth, outHeight, outWidth, inChannels: cin } = layer;
  const n = a.shape[0];
  const columns = k * k * cin;
  if (columns <= (ONE_HOT_MAX_COLUMNS[tf.getBackend()] ?? ONE_HOT_MAX_COLUMNS_ELSEWHERE)) {
    const eye = new Float32Array(columns * columns);
    for (let c = 0; c < columns; c++) eye[c * columns + c] = 1;
    const oneHot = tf.tensor4d(eye, [k, k, cin, columns]);
    return tf.reshape(tf.conv2d(a, oneHot, s, "same"), [n, outHeight * outWidth, columns]);
  }
  const padH = Math.max(0, (outHeight - 1) * s + k - inHeight);
  const padW = Math.max(0, (outWidth - 1) * s + k - inWidth);
  const top = Math.floor(padH / 2);
  const left = Math.floor(padW / 2);
  const paddedWidth = inWidth + padW;
  const padded = tf.pad(a, [
    [0, 0],
    [top, padH - top],
    [left, padW - left],
    [0, 0],
  ]);
  const index = new Int32Array(outHeight * outWidth * columns);
  let q = 0;
  for (let oy = 0; oy < outHeight; oy++)
    for (let ox = 0; ox < outWidth; ox++)
      for (let ky = 0; ky < k; ky++)
        for (let kx = 0; kx < k; kx++) {
          const from = ((oy * s + ky) * paddedWidth + ox * s + kx) * cin;
          for (let c = 0; c < cin; c++) index[q++] = from + c;
        }
  const flat = tf.reshape(padded, [n, (inHeight + padH) * paddedWidth * cin]);
  return tf.reshape(tf.gather(flat, tf.tensor1d(index, "int32"), 1), [n, outHeight * outWidth, columns]);
}
