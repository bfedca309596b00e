import { describe, expect, it } from "vitest";
import {
  decodeVector,
  encodeVector,
  WIRE_HEADER_BYTES,
  WireError,
  WireKind,
  wireByteLength,
} from "../../../src/core/wire";
import { float32Bits, seededFill } from "./support";

function fromBits(bits: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

const special = fromBits([
  0x00000000, // +0
  0x80000000, // -0
  0x00000001, // smallest subnormal, 2^-149
  0x80000001, // -2^-149
  0x007fffff, // largest subnormal
  0x00800000, // smallest normal, 2^-126
  0x7f7fffff, // largest float32, about 3.4028235e38
  0xff7fffff, // its negative
  0x3f800000, // 1
  0xbfc00000, // -1.5
  0x4b800001, // 2^24 + 2: an integer float64 and float32 agree on
  0x3eaaaaab, // fround(1/3)
]);

function expectWireError(execute: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    execute();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WireError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

function validBody(count: number): Uint8Array {
  return encodeVector({
    kind: WireKind.update,
    round: 4,
    numExamples: 120,
    values: Float32Array.from({ length: count }, (_, i) => i / 8),
  });
}

describe("encodeVector", () => {
  it("writes the documented header and little-endian float32 values", () => {
    // Prepare
    const v = { kind: WireKind.update, round: 7, numExamples: 300, values: Float32Array.of(1, -2) };

    // Execute
    const bytes = encodeVector(v);

    // Assert
    expect(Array.from(bytes)).toEqual([
      0x46, 0x57, 0x44, 0x31, 2, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 0x2c, 0x01, 0, 0, 0x00, 0x00, 0x80, 0x3f,
      0x00, 0x00, 0x00, 0xc0,
    ]);
    expect(bytes.length).toBe(wireByteLength(2));
    expect(wireByteLength(257)).toBe(WIRE_HEADER_BYTES + 4 * 257);
  });

  it.each([
    ["round", -1],
    ["round", 1.5],
    ["round", 2 ** 32],
    ["numExamples", -3],
    ["numExamples", Number.NaN],
  ] as const)("refuses %s = %s, naming the field", (field, value) => {
    // Prepare
    const v = {
      kind: WireKind.update,
      round: 1,
      numExamples: 1,
      values: new Float32Array(3),
      [field]: value,
    };

    // Execute
    const execute = () => encodeVector(v);

    // Assert
    expectWireError(execute, field, String(value));
  });
});

describe("decodeVector round trip", () => {
  it("keeps every float32 bit, including -0, subnormals and the largest values", () => {
    // Prepare
    const v = { kind: WireKind.model, round: 0xffffffff, numExamples: 0, values: special };

    // Execute
    const decoded = decodeVector(encodeVector(v), { kind: WireKind.model, count: special.length });

    // Assert
    expect(float32Bits(decoded.values)).toEqual(float32Bits(special));
    expect(Object.is(decoded.values[1], -0)).toBe(true);
    expect(decoded.kind).toBe(WireKind.model);
    expect(decoded.round).toBe(0xffffffff);
    expect(decoded.numExamples).toBe(0);
  });

  it("keeps every bit of 20000 random finite float32 patterns, and round and numExamples", () => {
    // Prepare
    const raw = new Uint8Array(4 * 20000);
    seededFill(20240611)(raw);
    const bits = Array.from(new Uint32Array(raw.buffer)).filter((b) => ((b >>> 23) & 0xff) !== 0xff);
    const values = fromBits(bits);
    const v = { kind: WireKind.update, round: 12, numExamples: 0xfffffffe, values };

    // Execute
    const decoded = decodeVector(encodeVector(v), { kind: WireKind.update });

    // Assert
    expect(values.length).toBeGreaterThan(19800);
    expect(float32Bits(decoded.values)).toEqual(bits);
    expect(decoded.round).toBe(12);
    expect(decoded.numExamples).toBe(0xfffffffe);
  });

  it("reads a body that sits at an odd offset inside a larger buffer", () => {
    // Prepare
    const body = encodeVector({ kind: WireKind.update, round: 3, numExamples: 9, values: special });
    const larger = new Uint8Array(body.length + 7);
    larger.set(body, 3);
    const view = larger.subarray(3, 3 + body.length);

    // Execute
    const decoded = decodeVector(view, { kind: WireKind.update, count: special.length });

    // Assert
    expect(float32Bits(decoded.values)).toEqual(float32Bits(special));
    expect(decoded.round).toBe(3);
    expect(decoded.numExamples).toBe(9);
  });

  it("accepts an empty vector", () => {
    // Prepare
    const body = encodeVector({
      kind: WireKind.model,
      round: 0,
      numExamples: 0,
      values: new Float32Array(0),
    });

    // Execute
    const decoded = decodeVector(body, { kind: WireKind.model, count: 0 });

    // Assert
    expect(body.length).toBe(WIRE_HEADER_BYTES);
    expect(decoded.values.length).toBe(0);
  });
});

describe("decodeVector errors", () => {
  it("refuses a body shorter than the header", () => {
    // Prepare
    const body = validBody(4).subarray(0, 19);

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update });

    // Assert
    expectWireError(execute, "19 bytes", "20-byte header");
  });

  it("refuses a body with a bad magic", () => {
    // Prepare
    const body = validBody(4);
    body[3] = 0x32; // "FWD2"

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update });

    // Assert
    expectWireError(execute, "magic", "FWD1");
  });

  it("refuses a model where an update is expected", () => {
    // Prepare
    const body = encodeVector({
      kind: WireKind.model,
      round: 1,
      numExamples: 0,
      values: new Float32Array(4),
    });

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update });

    // Assert
    expectWireError(execute, "kind: expected 2, got 1");
  });

  it("refuses a count that differs from the plan's", () => {
    // Prepare
    const body = validBody(256);

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update, count: 257 });

    // Assert
    expectWireError(execute, "count", "257", "256");
  });

  it.each([
    ["one byte short", -1],
    ["one byte long", 1],
  ])("refuses a body %s", (_, change) => {
    // Prepare
    const full = validBody(5);
    const body = new Uint8Array(full.length + change);
    body.set(full.subarray(0, Math.min(full.length, body.length)));

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update, count: 5 });

    // Assert
    expectWireError(execute, "length", "5 values need 40 bytes", `the body has ${40 + change}`);
  });

  it("refuses a header that declares more values than the body holds", () => {
    // Prepare
    const body = validBody(5);
    new DataView(body.buffer).setUint32(12, 0xffffffff, true);

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update });

    // Assert
    expectWireError(execute, "length", "4294967295 values");
  });

  it.each([
    [Number.NaN, 5, "NaN"],
    [Number.POSITIVE_INFINITY, 0, "Infinity"],
    [Number.NEGATIVE_INFINITY, 7, "-Infinity"],
  ])("refuses %s and names its index", (bad, index, shown) => {
    // Prepare
    const values = Float32Array.from({ length: 8 }, (_, i) => i - 3.25);
    values[index] = bad;
    const body = encodeVector({ kind: WireKind.update, round: 2, numExamples: 10, values });

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update, count: 8 });

    // Assert
    expectWireError(execute, "values", `value ${index} is ${shown}`);
  });

  it("refuses a NaN with a non-default payload", () => {
    // Prepare
    const body = validBody(3);
    new DataView(body.buffer).setUint32(WIRE_HEADER_BYTES + 8, 0x7fa00001, true);

    // Execute
    const execute = () => decodeVector(body, { kind: WireKind.update, count: 3 });

    // Assert
    expectWireError(execute, "value 2 is NaN");
  });
});
