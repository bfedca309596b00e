/**
 * Colour maths. PS3.3 C.7.6.3.1.2 defines YBR_FULL from 8-bit RGB as
 *   Y  =  .2990 R + .5870 G + .1140 B
 *   CB = -.1687 R - .3313 G + .5000 B + 128
 *   CR =  .5000 R - .4187 G - .0813 B + 128
 * (the JFIF / ITU-T T.871 equations). Its inverse, used here, is
 *   R = Y + 1.402 (CR - 128)
 *   G = Y - 0.344136 (CB - 128) - 0.714136 (CR - 128)
 *   B = Y + 1.772 (CB - 128)
 * with 128 replaced by 2^(bits-1) for other depths, and the result clamped to the sample range.
 */

/** ITU-R BT.601 luma weights, the Y row above: grey = 0.299 R + 0.587 G + 0.114 B. */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

/** Writes R, G, B of one YBR_FULL pixel into out[at..at+2]; `half` is 2^(bits-1), `max` is 2^bits - 1. */
export function ybrFullToRgb(
  y: number,
  cb: number,
  cr: number,
  half: number,
  max: number,
  out: Float64Array,
  at: number,
): void {
  const b = cb - half;
  const r = cr - half;
  out[at] = clamp(y + 1.402 * r, max);
  out[at + 1] = clamp(y - 0.344136 * b - 0.714136 * r, max);
  out[at + 2] = clamp(y + 1.772 * b, max);
}

export function luma(r: number, g: number, b: number): number {
  return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b;
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
