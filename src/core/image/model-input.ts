import { luma, ybrFullToRgb } from "./colour";
import { checkFrame, type DecodedFrame } from "./frame";
import { resize } from "./resize";
import { storedValueCodec } from "./stored-values";
import { applyLinearVoi, linearVoi, type VoiWindow } from "./voi";

export interface ModelInputSpec {
  width: number;
  height: number;
  channels: 1 | 3;
  /** The plan's fixed window in modality units (HU for CT), for grey images; see toModelInput. */
  window?: VoiWindow;
}

const MAX_SIDE = 4096;

/**
 * One frame → a height×width×channels Float32Array, channel-last (TF.js NHWC without the batch axis),
 * every value in [0, 1]. In order:
 * 1. stored values: high bits masked, sign-extended when PixelRepresentation is 1 (PS3.5 8.1.1);
 * 2. grey images: rescale to modality units, v = slope · SV + intercept (PS3.3 C.11.1.1.2); then
 *    - with spec.window: the linear VOI function of PS3.3 C.11.2.1.2.1 onto [0, 1];
 *    - without: the range bitsStored can hold, rescaled, mapped linearly onto [0, 1] (0..2^n-1 unsigned,
 *      -2^(n-1)..2^(n-1)-1 signed): nothing is clipped, but CT looks flat, so CT plans should set a window;
 *    then MONOCHROME1 is inverted, 1 - v, after the window (its lowest value means white; C.7.6.3.1.2);
 * 3. colour images: YBR_FULL and YBR_FULL_422 become RGB (equations in colour.ts), planar configuration
 *    1 is read plane by plane, and each sample is divided by 2^bitsStored - 1 (8-bit RGB: / 255). The
 *    window is not applied: Window Center / Width "have no meaning" for colour images (C.11.2.1.2);
 * 4. channels: grey → 3 channels repeats the value; RGB → 1 channel is BT.601 luma 0.299 R + 0.587 G +
 *    0.114 B;
 * 5. resize to height×width (resize.ts: area averaging when shrinking, bilinear when growing).
 */
export function toModelInput(frame: DecodedFrame, spec: ModelInputSpec): Float32Array {
  checkSpec(spec);
  checkFrame(frame);
  const grey = frame.samplesPerPixel === 1;
  const full = grey ? greyIntensities(frame, spec.window) : colourIntensities(frame, spec.channels);
  const channelsIn = grey ? 1 : spec.channels;
  const sized = resize(full, frame.rows, frame.columns, channelsIn, spec.height, spec.width);
  const out = channelsIn === spec.channels ? sized : repeatChannels(sized, spec.channels);
  for (let i = 0; i < out.length; i++) {
    const v = out[i] as number;
    if (v < 0) out[i] = 0;
    else if (v > 1) out[i] = 1;
  }
  return out;
}

function checkSpec(spec: ModelInputSpec): void {
  for (const [name, v] of [
    ["width", spec.width],
    ["height", spec.height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
      throw new RangeError(`model input ${name} ${v} must be an integer from 1 to ${MAX_SIDE}`);
    }
  }
  if (spec.channels !== 1 && spec.channels !== 3) {
    throw new RangeError(`model input channels ${spec.channels} must be 1 or 3`);
  }
}

function greyIntensities(frame: DecodedFrame, window: VoiWindow | undefined): Float32Array {
  const intensity = greyTransfer(frame, window);
  const { samples } = frame;
  const out = new Float32Array(samples.length);
  // Every pixel goes through the same function of its sample word: for 8- and 16-bit words, tabulate it
  // once (65,536 entries beat 262,144 evaluations for a 512×512 slice). Same float32 results either way.
  const words = frame.bitsAllocated <= 16 ? 2 ** frame.bitsAllocated : 0;
  if (words > 0 && samples.length > words) {
    const table = new Float32Array(words);
    for (let w = 0; w < words; w++) table[w] = intensity(w);
    for (let i = 0; i < samples.length; i++) out[i] = table[samples[i] as number] as number;
    return out;
  }
  for (let i = 0; i < samples.length; i++) out[i] = intensity(samples[i] as number);
  return out;
}

/** Sample word → [0, 1]: stored value, rescale, window (or the stored range), MONOCHROME1 inversion. */
function greyTransfer(frame: DecodedFrame, window: VoiWindow | undefined): (word: number) => number {
  const codec = storedValueCodec(frame);
  const { rescaleSlope: slope, rescaleIntercept: intercept } = frame;
  const { shift, mask, signed, half, full } = codec;
  const invert = frame.photometric === "MONOCHROME1";
  const modality = (word: number): number => {
    let v = ((word >>> shift) & mask) >>> 0;
    if (signed && v >= half) v -= full;
    return v * slope + intercept;
  };
  if (window !== undefined) {
    const voi = linearVoi(window);
    return (word) => {
      const y = applyLinearVoi(modality(word), voi);
      return invert ? 1 - y : y;
    };
  }
  const a = codec.min * slope + intercept;
  const b = codec.max * slope + intercept;
  const low = Math.min(a, b);
  const scale = 1 / Math.abs(b - a);
  return (word) => {
    const y = (modality(word) - low) * scale;
    return invert ? 1 - y : y;
  };
}

/** RGB in [0, 1] (or its luma when one channel is asked for), channel-last. */
function colourIntensities(frame: DecodedFrame, channels: 1 | 3): Float32Array {
  const codec = storedValueCodec({ ...frame, pixelRepresentation: 0 });
  const { shift, mask } = codec;
  const max = codec.max;
  const scale = 1 / max;
  const pixels = frame.rows * frame.columns;
  const { samples, photometric } = frame;
  const planar = frame.planarConfiguration === 1;
  const rgb = new Float64Array(3);
  const out = new Float32Array(pixels * channels);
  const word = (i: number): number => (((samples[i] as number) >>> shift) & mask) >>> 0;
  for (let p = 0; p < pixels; p++) {
    let s0: number;
    let s1: number;
    let s2: number;
    if (photometric === "YBR_FULL_422") {
      // Two pixels share Cb and Cr: Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
      const base = (p >> 1) * 4;
      s0 = word(base + (p & 1));
      s1 = word(base + 2);
      s2 = word(base + 3);
    } else if (planar) {
      s0 = word(p);
      s1 = word(p + pixels);
      s2 = word(p + 2 * pixels);
    } else {
      s0 = word(3 * p);
      s1 = word(3 * p + 1);
      s2 = word(3 * p + 2);
    }
    if (photometric === "RGB") {
      rgb[0] = s0;
      rgb[1] = s1;
      rgb[2] = s2;
    } else {
      ybrFullToRgb(s0, s1, s2, codec.half, max, rgb, 0);
    }
    if (channels === 1) {
      out[p] = luma(rgb[0] as number, rgb[1] as number, rgb[2] as number) * scale;
    } else {
      out[3 * p] = (rgb[0] as number) * scale;
      out[3 * p + 1] = (rgb[1] as number) * scale;
      out[3 * p + 2] = (rgb[2] as number) * scale;
    }
  }
  return out;
}

function repeatChannels(grey: Float32Array, channels: number): Float32Array {
  const out = new Float32Array(grey.length * channels);
  for (let i = 0; i < grey.length; i++) {
    const v = grey[i] as number;
    for (let c = 0; c < channels; c++) out[i * channels + c] = v;
  }
  return out;
}
