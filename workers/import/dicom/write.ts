import { EXPLICIT_LITTLE } from "./transfer-syntax";

/**
 * A minimal DICOM Part 10 writer, explicit VR little endian, for synthesising files in memory: the
 * benchmark's 512×512 CT slice and the tests' edge cases. Not for exporting real data.
 */
export interface WriteElement {
  /** 0xGGGGEEEE */
  tag: number;
  vr: string;
  /** Text for string VRs, numbers for US / UL / SS, bytes for OB / OW / UN. */
  value: string | number[] | Uint8Array;
}

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);

export function writeDicom(
  dataSet: WriteElement[],
  options: { transferSyntaxUid?: string } = {},
): Uint8Array {
  const sopClass = dataSet.find((e) => e.tag === 0x00080016)?.value;
  const sopInstance = dataSet.find((e) => e.tag === 0x00080018)?.value;
  const metaBody = concat([
    encode({ tag: 0x00020001, vr: "OB", value: new Uint8Array([0, 1]) }),
    encode({
      tag: 0x00020002,
      vr: "UI",
      value: typeof sopClass === "string" ? sopClass : "1.2.840.10008.5.1.4.1.1.7",
    }),
    encode({ tag: 0x00020003, vr: "UI", value: typeof sopInstance === "string" ? sopInstance : "2.25.1" }),
    encode({ tag: 0x00020010, vr: "UI", value: options.transferSyntaxUid ?? EXPLICIT_LITTLE }),
  ]);
  const groupLength = encode({ tag: 0x00020000, vr: "UL", value: [metaBody.length] });
  const preamble = new Uint8Array(132);
  preamble.set([0x44, 0x49, 0x43, 0x4d], 128);
  const sorted = [...dataSet].sort((a, b) => a.tag - b.tag);
  return concat([preamble, groupLength, metaBody, ...sorted.map(encode)]);
}

/** One element, explicit VR little endian, value padded to even length (PS3.5 7.1.2, 6.2). */
export function encode(element: WriteElement): Uint8Array {
  const value = valueBytes(element);
  const long = LONG_VRS.has(element.vr);
  const out = new Uint8Array((long ? 12 : 8) + value.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, element.tag >>> 16, true);
  view.setUint16(2, element.tag & 0xffff, true);
  out[4] = element.vr.charCodeAt(0);
  out[5] = element.vr.charCodeAt(1);
  if (long) view.setUint32(8, value.length, true);
  else view.setUint16(6, value.length, true);
  out.set(value, long ? 12 : 8);
  return out;
}

function valueBytes({ vr, value }: WriteElement): Uint8Array {
  if (value instanceof Uint8Array) return value.length % 2 === 0 ? value : concat([value, new Uint8Array(1)]);
  if (typeof value === "string") {
    const padded = value.length % 2 === 0 ? value : value + (vr === "UI" ? "\0" : " ");
    return Uint8Array.from(padded, (c) => c.charCodeAt(0) & 0xff);
  }
  const size = vr === "UL" || vr === "SL" ? 4 : 2;
  const out = new Uint8Array(value.length * size);
  const view = new DataView(out.buffer);
  value.forEach((v, i) => {
    if (size === 4) view.setUint32(i * 4, v >>> 0, true);
    else view.setUint16(i * 2, v & 0xffff, true);
  });
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
