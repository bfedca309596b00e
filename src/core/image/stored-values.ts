import type { DecodedFrame } from "./frame";

/**
 * How a sample word becomes its stored value (PS3.5 8.1.1): the bitsStored bits ending at highBit are the
 * value, bits above it may hold anything (overlays in old files) and are masked off, and with
 * PixelRepresentation 1 the value is two's complement of bitsStored bits, so it is sign-extended.
 */
export interface StoredValueCodec {
  /** Right shift that brings the stored value's lowest bit to bit 0: highBit + 1 - bitsStored. */
  shift: number;
  /** bitsStored low bits; -1 (all 32) when bitsStored is 32. Apply as ((word >>> shift) & mask) >>> 0. */
  mask: number;
  signed: boolean;
  /** 2^(bitsStored-1): values at or above it are negative when signed. */
  half: number;
  /** 2^bitsStored, subtracted from a negative value's unsigned reading. */
  full: number;
  /** Smallest and largest stored value bitsStored can hold. */
  min: number;
  max: number;
}

export function storedValueCodec(
  frame: Pick<DecodedFrame, "bitsStored" | "highBit" | "pixelRepresentation">,
): StoredValueCodec {
  const bits = frame.bitsStored;
  const full = 2 ** bits;
  const half = full / 2;
  const signed = frame.pixelRepresentation === 1;
  return {
    shift: frame.highBit + 1 - bits,
    mask: bits >= 32 ? -1 : full - 1,
    signed,
    half,
    full,
    min: signed ? -half : 0,
    max: signed ? half - 1 : full - 1,
  };
}

/** One word's stored value. */
export function storedValue(word: number, codec: StoredValueCodec): number {
  const v = ((word >>> codec.shift) & codec.mask) >>> 0;
  return codec.signed && v >= codec.half ? v - codec.full : v;
}

/** Every sample's stored value, in the samples' order (exact: float64 holds any 32-bit integer). */
export function storedValues(frame: DecodedFrame): Float64Array {
  const codec = storedValueCodec(frame);
  const { samples } = frame;
  const out = new Float64Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = storedValue(samples[i] as number, codec);
  return out;
}
