/// <reference path="./modules.d.ts" />
import dicomParser, { type Element, type Fragment } from "dicom-parser";
import type { ParsedDicom } from "./dataset";
import { DicomError } from "./errors";
import type { PixelInfo } from "./pixel-info";

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes one native (uncompressed) frame takes: YBR_FULL_422 keeps 2 samples per pixel (PS3.3 C.7.6.3.1.2). */
export function nativeFrameBytes(info: PixelInfo): number {
  const samples = info.photometricInterpretation === "YBR_FULL_422" ? 2 : info.samplesPerPixel;
  return info.rows * info.columns * samples * (info.bitsAllocated / 8);
}

/**
 * One native frame's sample words, copied out (aligned, native byte order). Big-endian words are swapped;
 * 8-bit samples in an OW value of a big-endian file are swapped pairwise, because OW is a stream of 16-bit
 * words (PS3.5 7.3: the byte order applies to OW as a whole, as pydicom reads it).
 */
export function nativeFrame(
  parsed: ParsedDicom,
  element: Element,
  info: PixelInfo,
  index: number,
): Uint8Array | Uint16Array | Uint32Array {
  const frameBytes = nativeFrameBytes(info);
  const start = index * frameBytes;
  if (frameBytes * info.numberOfFrames > element.length) {
    // Short pixel data means a broken file whichever frame is asked for (pydicom refuses it too).
    throw new DicomError(
      parsed.fileName,
      "bad-pixel-data",
      `Pixel Data holds ${element.length} bytes, but ${info.numberOfFrames} frame(s) of ${info.rows}×${info.columns}` +
        `×${info.photometricInterpretation === "YBR_FULL_422" ? "2 (YBR_FULL_422)" : info.samplesPerPixel} samples` +
        ` of ${info.bitsAllocated} bits need ${frameBytes * info.numberOfFrames}`,
      element.dataOffset,
    );
  }
  const from = element.dataOffset + start;
  const raw = parsed.bytes;
  const words = frameBytes / (info.bitsAllocated / 8);
  if (info.bitsAllocated === 8) {
    if (parsed.littleEndian || element.vr !== "OW") return raw.slice(from, from + frameBytes);
    const out = new Uint8Array(frameBytes);
    // Pairs are counted from the start of the value, which a frame of odd length may not start on.
    for (let i = 0; i < frameBytes; i++) out[i] = raw[element.dataOffset + ((start + i) ^ 1)] as number;
    return out;
  }
  const le = parsed.littleEndian;
  if (le === HOST_LITTLE_ENDIAN) {
    // Same byte order as this machine: one copy, and the copy's buffer is aligned for the word view.
    const copy = raw.slice(from, from + frameBytes).buffer;
    return info.bitsAllocated === 16 ? new Uint16Array(copy) : new Uint32Array(copy);
  }
  const view = new DataView(raw.buffer, raw.byteOffset + from, frameBytes);
  if (info.bitsAllocated === 16) {
    const out = new Uint16Array(words);
    for (let i = 0; i < words; i++) out[i] = view.getUint16(2 * i, le);
    return out;
  }
  const out = new Uint32Array(words);
  for (let i = 0; i < words; i++) out[i] = view.getUint32(4 * i, le);
  return out;
}

/**
 * One frame's compressed bytes from encapsulated Pixel Data (PS3.5 A.4): by the Extended Offset Table
 * (7FE0,0001) when there is one, else the Basic Offset Table, else one fragment per frame when the counts
 * agree, else (JPEG family) by where each JPEG stream ends.
 */
export function encapsulatedFrame(
  parsed: ParsedDicom,
  element: Element,
  info: PixelInfo,
  index: number,
): Uint8Array {
  const fragments = element.fragments ?? [];
  const { fileName } = parsed;
  if (fragments.length === 0) {
    throw new DicomError(
      fileName,
      "bad-pixel-data",
      "its encapsulated Pixel Data has no fragments",
      element.dataOffset,
    );
  }
  const frames = info.numberOfFrames;
  const extended = extendedOffsets(parsed, frames);
  if (extended !== undefined) {
    const base = (fragments[0] as Fragment).position - 8;
    const at = base + (extended.offsets[index] as number) + 8;
    const length = extended.lengths[index] as number;
    if (at + length > parsed.bytes.length) {
      throw new DicomError(
        fileName,
        "bad-pixel-data",
        `the Extended Offset Table points frame ${index} past the file's end`,
      );
    }
    return parsed.bytes.slice(at, at + length);
  }
  if (frames === 1) return join(parsed.bytes, fragments);
  let table = element.basicOffsetTable ?? [];
  if (table.length === 0 && fragments.length === frames)
    return join(parsed.bytes, [fragments[index] as Fragment]);
  if (table.length === 0 && parsed.syntax?.pixels.startsWith("jpeg")) {
    table = dicomParser.createJPEGBasicOffsetTable(parsed.dataSet, element, fragments);
  }
  if (table.length !== frames) {
    throw new DicomError(
      fileName,
      "bad-pixel-data",
      `it has ${frames} frames in ${fragments.length} fragments and a Basic Offset Table of ${table.length} entries, ` +
        `so which fragments make frame ${index} cannot be told`,
      element.dataOffset,
    );
  }
  const from = table[index] as number;
  const to = index + 1 < frames ? (table[index + 1] as number) : Number.POSITIVE_INFINITY;
  const mine = fragments.filter((f) => f.offset >= from && f.offset < to);
  if (mine.length === 0) {
    throw new DicomError(
      fileName,
      "bad-pixel-data",
      `the Basic Offset Table points frame ${index} at no fragment`,
    );
  }
  return join(parsed.bytes, mine);
}

function join(bytes: Uint8Array, fragments: Fragment[]): Uint8Array {
  if (fragments.length === 1) {
    const f = fragments[0] as Fragment;
    return bytes.slice(f.position, f.position + f.length);
  }
  const out = new Uint8Array(fragments.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of fragments) {
    out.set(bytes.subarray(f.position, f.position + f.length), at);
    at += f.length;
  }
  return out;
}

/** (7FE0,0001) and (7FE0,0002): 64-bit offsets and lengths per frame (PS3.3 C.7.6.3.1.8). */
function extendedOffsets(
  parsed: ParsedDicom,
  frames: number,
): { offsets: number[]; lengths: number[] } | undefined {
  const table = parsed.dataSet.elements.x7fe00001;
  const lengths = parsed.dataSet.elements.x7fe00002;
  if (
    table === undefined ||
    lengths === undefined ||
    table.length !== 8 * frames ||
    lengths.length !== 8 * frames
  ) {
    return undefined;
  }
  const read = (el: Element): number[] => {
    const view = new DataView(parsed.bytes.buffer, parsed.bytes.byteOffset + el.dataOffset, el.length);
    return Array.from({ length: frames }, (_, i) => Number(view.getBigUint64(8 * i, parsed.littleEndian)));
  };
  return { offsets: read(table), lengths: read(lengths) };
}
