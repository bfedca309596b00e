import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

/**
 * Kernels that CNN training needs and tfjs-backend-wasm 4.22 lacks. Only Conv2DBackpropFilter (the
 * gradient of a conv's kernel) is missing; Conv2DBackpropInput and MaxPoolGrad are there. Each is
 * registered only while the wasm backend has none of its own, so a later tfjs that adds one wins.
 *
 * The wasm backend's Conv3DBackpropFilterV2 at depth 1 would do for stride 1 but is wrong for stride 2 in
 * 4.22 (its loop bounds use a floor where a ceiling is needed, and its ceiling rounds negative numerators
 * up), so the gradient is computed as one matrix product per chunk on the backend's own (XNNPACK) matmul.
 */

/** The parts of the wasm backend used here (BackendWasm is not exported as a type). */
interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(dataId: tf.DataId): boolean;
}

/** Rows of patches per matrix product: bounds the scratch memory at 16 MB whatever the batch and image. */
const MAX_PATCH_VALUES = 1 << 22;

type ConvInfo = tf.backend_util.Conv2DInfo;

/**
 * Fills patchesT[k, r] (k = (ky·fw + kx)·cin + ci, r = row - first) with x at the input pixel that kernel
 * tap (ky, kx) sees for output pixel `row` = (b·outHeight + oy)·outWidth + ox; zero where that falls in the
 * padding.
 */
function fillPatchesT(patchesT: Float32Array, x: Float32Array, info: ConvInfo, first: number, rows: number) {
  const { inHeight, inWidth, inChannels: cin, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  patchesT.fill(0);
  for (let r = 0; r < rows; r++) {
    const row = first + r;
    const ox = row % outWidth;
    const oy = Math.floor(row / outWidth) % outHeight;
    const b = Math.floor(row / (outWidth * outHeight));
    for (let ky = 0; ky < fh; ky++) {
      const iy = oy * strideHeight + ky - top;
      if (iy < 0 || iy >= inHeight) continue;
      for (let kx = 0; kx < fw; kx++) {
        const ix = ox * strideWidth + kx - left;
        if (ix < 0 || ix >= inWidth) continue;
        const from = ((b * inHeight + iy) * inWidth + ix) * cin;
        const k = (ky * fw + kx) * cin;
        for (let ci = 0; ci < cin; ci++) patchesT[(k + ci) * rows + r] = x[from + ci] as number;
      }
    }
  }
}

/**
 * dW[ky, kx, ci, co] = Σ over batch and output pixels of x[b, oy·sh + ky − top, ox·sw + kx − left, ci] ·
 * dy[b, oy, ox, co]: with the patches as a [kh·kw·cin, rows] matrix and dy as [rows, cout], dW is their
 * product, already in tfjs's [kh, kw, cin, cout] order. NHWC, dilation 1, any padding tfjs computes.
 */
function conv2dBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { x, dy } = inputs as tf.Conv2DBackpropFilterInputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (!x || !dy || dataFormat !== "NHWC" || x.dtype !== "float32" || dy.dtype !== "float32") {
    throw new Error(
      `fedward's wasm Conv2DBackpropFilter takes float32 NHWC x and dy, not ${x?.dtype} ${dataFormat}; this is a bug in fedward.`,
    );
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
    throw new Error(
      `Conv2DBackpropFilter: dy is ${dy.shape} but the conv gives ${info.outHeight}×${info.outWidth}; this is a bug in fedward.`,
    );
  }
  const heap = backend as WasmHeap;
  const matMul = tf.getKernel(tf.BatchMatMul, "wasm").kernelFunc;
  const taps = info.filterHeight * info.filterWidth * info.inChannels;
  const cout = info.outChannels;
  const total = info.batchSize * info.outHeight * info.outWidth;
  const chunk = Math.max(1, Math.min(total, Math.floor(MAX_PATCH_VALUES / taps)));
  const sum = new Float64Array(taps * cout);
  for (let first = 0; first < total; first += chunk) {
    const rows = Math.min(chunk, total - first);
    const a = heap.makeOutput([1, taps, rows], "float32");
    const b = heap.makeOutput([1, rows, cout], "float32");
    // Views only now: growing the wasm memory detaches views taken before.
    fillPatchesT(heap.typedArrayFromHeap(a), heap.typedArrayFromHeap(x), info, first, rows);
    heap.typedArrayFromHeap(b).set(heap.typedArrayFromHeap(dy).subarray(first * cout, (first + rows) * cout));
    const product = matMul({
      inputs: { a, b },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;
    const part = heap.typedArrayFromHeap(product);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (part[i] as number);
    for (const t of [a, b, product]) heap.disposeData(t.dataId);
  }
  const dw = heap.makeOutput([...filterShape], "float32");
  heap.typedArrayFromHeap(dw).set(sum);
  return dw;
}

/** Registers the missing kernels for backendName "wasm"; safe to call more than once. */
export function registerWasmTrainingKernels(): void {
  if (!tf.getKernel(tf.Conv2DBackpropFilter, "wasm")) {
    tf.registerKernel({
      kernelName: tf.Conv2DBackpropFilter,
      backendName: "wasm",
      kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
    });
  }
}

registerWasmTrainingKernels();
