import { allFinite } from "./vector";

/**
 * Binary wire format for weight vectors (never JSON arrays of numbers):
 *   bytes 0-3   magic "FWD1"
 *   byte  4     kind: 1 = global model, 2 = site update (a weight delta)
 *   bytes 5-7   zero
 *   bytes 8-11  round (model version for kind 1), uint32 little-endian
 *   bytes 12-15 number of float32 values, uint32 LE
 *   bytes 16-19 number of training examples behind an update (0 for a model), uint32 LE
 *   bytes 20-   the values, float32 LE
 */
export const WIRE_HEADER_BYTES = 20;
const MAGIC = [0x46, 0x57, 0x44, 0x31];

export const WireKind = { model: 1, update: 2 } as const;
export type WireKind = (typeof WireKind)[keyof typeof WireKind];

export interface WireVector {
  kind: WireKind;
  round: number;
  numExamples: number;
  values: Float32Array;
}

export class WireError extends Error {
  override name = "WireError";
}

export function wireByteLength(count: number): number {
  return WIRE_HEADER_BYTES + 4 * count;
}

export function encodeVector(v: WireVector): Uint8Array {
  for (const [field, x] of [
    ["round", v.round],
    ["numExamples", v.numExamples],
  ] as const) {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff)
      throw new WireError(`${field} must be a uint32, got ${x}`);
  }
  if (v.kind !== WireKind.model && v.kind !== WireKind.update)
    throw new WireError(`kind must be 1 or 2, got ${v.kind}`);
  const bytes = new Uint8Array(wireByteLength(v.values.length));
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = v.kind;
  view.setUint32(8, v.round, true);
  view.setUint32(12, v.values.length, true);
  view.setUint32(16, v.numExamples, true);
  for (let i = 0; i < v.values.length; i++)
    view.setFloat32(WIRE_HEADER_BYTES + 4 * i, v.values[i] as number, true);
  return bytes;
}

/** Decodes and validates; every error names the field that is wrong. */
export function decodeVector(bytes: Uint8Array, expected: { kind: WireKind; count?: number }): WireVector {
  if (bytes.length < WIRE_HEADER_BYTES) {
    throw new WireError(`body is ${bytes.length} bytes, shorter than the ${WIRE_HEADER_BYTES}-byte header`);
  }
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== MAGIC[i])
      throw new WireError('magic: body does not start with "FWD1"; not a fedward vector');
  }
  if (bytes[4] !== expected.kind) {
    throw new WireError(`kind: expected ${expected.kind}, got ${bytes[4]}`);
  }
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new WireError("reserved: bytes 5-7 must be zero; the body was written by an unknown version");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const round = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  const numExamples = view.getUint32(16, true);
  if (expected.count !== undefined && count !== expected.count) {
    throw new WireError(`count: the plan's model has ${expected.count} weights, the body declares ${count}`);
  }
  if (bytes.length !== wireByteLength(count)) {
    throw new WireError(
      `length: ${count} values need ${wireByteLength(count)} bytes, the body has ${bytes.length}`,
    );
  }
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat32(WIRE_HEADER_BYTES + 4 * i, true);
  if (!allFinite(values)) {
    const bad = values.findIndex((x) => !Number.isFinite(x));
    throw new WireError(`values: value ${bad} is ${values[bad]}; every weight must be a finite number`);
  }
  return { kind: expected.kind, round, numExamples, values };
}
