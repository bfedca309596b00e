/**
 * RLE Lossless (PS3.5 Annex G). A frame is one fragment: a 64-byte header of 16 little-endian uint32s (the
 * number of segments, then up to 15 segment offsets from the fragment's start), then the segments. Each
 * segment is one byte plane of one sample, PackBits-coded (G.3.1): a header byte n in 0..127 copies the
 * next n+1 bytes, n in -127..-1 repeats the next byte 1-n times, -128 does nothing. Segments run sample by
 * sample, most significant byte first (G.2), so for 16-bit RGB they are R-high, R-low, G-high, …
 */

export interface RleFrame {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** 8, 16 or 32. */
  bitsAllocated: number;
}

/** Decodes one frame to sample words, pixel-interleaved (planar configuration 0). Throws Error on bad data. */
export function decodeRle(fragment: Uint8Array, frame: RleFrame): Uint8Array | Uint16Array | Uint32Array {
  const bytesPerSample = frame.bitsAllocated / 8;
  const pixels = frame.rows * frame.columns;
  const segments = frame.samplesPerPixel * bytesPerSample;
  if (fragment.length < 64)
    throw new Error(`the RLE frame is ${fragment.length} bytes, shorter than its 64-byte header`);
  const view = new DataView(fragment.buffer, fragment.byteOffset, fragment.byteLength);
  const count = view.getUint32(0, true);
  if (count !== segments) {
    throw new Error(
      `the RLE header lists ${count} segments; ${frame.samplesPerPixel} sample(s) of ${frame.bitsAllocated} bits need ${segments}`,
    );
  }
  const offsets: number[] = [];
  for (let s = 0; s < count; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  const planes = new Uint8Array(pixels * segments);
  for (let s = 0; s < count; s++) {
    const start = offsets[s] as number;
    const end = s + 1 < count ? (offsets[s + 1] as number) : fragment.length;
    if (start < 64 || end > fragment.length || end < start) {
      throw new Error(
        `RLE segment ${s + 1} lies at bytes ${start}..${end}, outside the ${fragment.length}-byte frame`,
      );
    }
    unpackBits(fragment, start, end, planes, s * pixels, pixels, s + 1);
  }
  const out =
    bytesPerSample === 1
      ? new Uint8Array(pixels * frame.samplesPerPixel)
      : bytesPerSample === 2
        ? new Uint16Array(pixels * frame.samplesPerPixel)
        : new Uint32Array(pixels * frame.samplesPerPixel);
  for (let sample = 0; sample < frame.samplesPerPixel; sample++) {
    for (let p = 0; p < pixels; p++) {
      let word = 0;
      for (let b = 0; b < bytesPerSample; b++) {
        word = word * 256 + (planes[(sample * bytesPerSample + b) * pixels + p] as number);
      }
      out[p * frame.samplesPerPixel + sample] = word;
    }
  }
  return out;
}

/** PackBits from src[start..end) into exactly `length` bytes of dst at `at`; a short segment is an error. */
function unpackBits(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
  length: number,
  segment: number,
): void {
  let i = start;
  let o = 0;
  while (o < length && i < end) {
    const n = src[i++] as number;
    if (n < 128) {
      const run = Math.min(n + 1, length - o, end - i);
      dst.set(src.subarray(i, i + run), at + o);
      i += n + 1;
      o += run;
    } else if (n > 128) {
      if (i >= end) break;
      const run = Math.min(257 - n, length - o);
      dst.fill(src[i++] as number, at + o, at + o + run);
      o += run;
    }
  }
  if (o < length) {
    throw new Error(`RLE segment ${segment} decodes to ${o} bytes; the frame needs ${length}`);
  }
}
