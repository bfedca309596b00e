/**
 * Deterministic separable resampling of channel-last float images, one axis at a time:
 * - shrinking an axis averages areas: output pixel j covers input [j·s, (j+1)·s) with s = in/out, and each
 *   input pixel counts by the fraction of it inside that span (a box filter; no aliasing, no random
 *   phase, the mean is kept);
 * - growing an axis (or keeping its size) is bilinear with half-pixel centres: output j samples input
 *   position (j + 0.5)·in/out - 0.5, clamped at the borders (the same grid as TF.js resizeBilinear with
 *   halfPixelCenters). Same size is the identity.
 * Each axis decides for itself, so 512×300 → 64×400 averages rows and interpolates columns.
 */

/** Per output index: the input indices and weights that make it (weights sum to 1). */
interface AxisTaps {
  /** Output j uses taps start[j] .. start[j+1]-1. */
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

export function axisTaps(inSize: number, outSize: number): AxisTaps {
  const index: number[] = [];
  const weight: number[] = [];
  const start = new Int32Array(outSize + 1);
  const scale = inSize / outSize;
  for (let j = 0; j < outSize; j++) {
    start[j] = index.length;
    if (outSize < inSize) {
      const from = j * scale;
      const to = (j + 1) * scale;
      for (let i = Math.floor(from); i < Math.min(inSize, Math.ceil(to)); i++) {
        const overlap = Math.min(to, i + 1) - Math.max(from, i);
        if (overlap > 0) {
          index.push(i);
          weight.push(overlap / scale);
        }
      }
    } else {
      const x = Math.min(Math.max((j + 0.5) * scale - 0.5, 0), inSize - 1);
      const i0 = Math.floor(x);
      const t = x - i0;
      index.push(i0);
      weight.push(1 - t);
      if (t > 0) {
        index.push(i0 + 1);
        weight.push(t);
      }
    }
  }
  start[outSize] = index.length;
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

/** Resizes an inH×inW×channels image (channel-last) to outH×outW×channels. */
export function resize(
  src: Float32Array,
  inH: number,
  inW: number,
  channels: number,
  outH: number,
  outW: number,
): Float32Array {
  if (src.length !== inH * inW * channels) {
    throw new RangeError(`resize: ${src.length} values is not ${inH}×${inW}×${channels}`);
  }
  if (inH === outH && inW === outW) return src.slice();
  const cols = axisTaps(inW, outW);
  const rows = axisTaps(inH, outH);
  // Columns first: inH × outW × channels.
  const mid = new Float32Array(inH * outW * channels);
  const { start: cStart, index: cIndex, weight: cWeight } = cols;
  for (let y = 0; y < inH; y++) {
    const rowIn = y * inW * channels;
    const rowOut = y * outW * channels;
    for (let x = 0; x < outW; x++) {
      const from = cStart[x] as number;
      const to = cStart[x + 1] as number;
      if (channels === 1) {
        let sum = 0;
        for (let k = from; k < to; k++)
          sum += (cWeight[k] as number) * (src[rowIn + (cIndex[k] as number)] as number);
        mid[rowOut + x] = sum;
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = from; k < to; k++) {
          sum += (cWeight[k] as number) * (src[rowIn + (cIndex[k] as number) * channels + c] as number);
        }
        mid[rowOut + x * channels + c] = sum;
      }
    }
  }
  const out = new Float32Array(outH * outW * channels);
  const stride = outW * channels;
  for (let y = 0; y < outH; y++) {
    const rowOut = y * stride;
    for (let k = rows.start[y] as number; k < (rows.start[y + 1] as number); k++) {
      const w = rows.weight[k] as number;
      const rowIn = (rows.index[k] as number) * stride;
      for (let i = 0; i < stride; i++)
        out[rowOut + i] = (out[rowOut + i] as number) + w * (mid[rowIn + i] as number);
    }
  }
  return out;
}
