import { DicomError } from "./errors";

/**
 * Where a DICOM file's parts are, told from its bytes, never its name (DICOMDIR trees hold extensionless
 * files): the "DICM" marker at byte 128 after the preamble (PS3.10 7.1), the File Meta Information group
 * (0002,xxxx, always explicit VR little endian), then the data set. Files without preamble or meta group
 * exist too; their encoding is sniffed from the first elements (sniffEncoding).
 */
export interface DicomLayout {
  /** Byte where the data set starts: after the meta group, or 0 when there is none. */
  datasetOffset: number;
  /** (0002,0010) from the meta group; undefined when there is no meta group or it lacks the element. */
  transferSyntaxUid: string | undefined;
  /** (0002,0002): a DICOMDIR says 1.2.840.10008.1.3.10 here. */
  mediaStorageSopClassUid: string | undefined;
  /** How the file starts: preamble and DICM, a meta group without preamble, or straight into the data set. */
  start: "part10" | "meta-without-preamble" | "bare-data-set";
}

export interface DatasetEncoding {
  explicitVr: boolean;
  littleEndian: boolean;
}

const VRS = new Set(
  "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split(
    " ",
  ),
);
/** VRs whose explicit length is 4 bytes after 2 reserved bytes (PS3.5 7.1.2). */
const LONG_VRS = new Set("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split(" "));

export function hasDicmMarker(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 &&
    bytes[129] === 0x49 &&
    bytes[130] === 0x43 &&
    bytes[131] === 0x4d
  );
}

/** True when the bytes start like DICOM (for telling DICOM files in a folder apart); reads at most 2 KiB. */
export function looksLikeDicom(head: Uint8Array): boolean {
  if (hasDicmMarker(head) || startsWithMeta(head, 0)) return true;
  return sniffEncoding(head.subarray(0, 2048), 0) !== undefined;
}

export function readLayout(bytes: Uint8Array, fileName: string): DicomLayout {
  const metaAt = hasDicmMarker(bytes) ? 132 : startsWithMeta(bytes, 0) ? 0 : undefined;
  if (metaAt === undefined) {
    return {
      datasetOffset: 0,
      transferSyntaxUid: undefined,
      mediaStorageSopClassUid: undefined,
      start: "bare-data-set",
    };
  }
  const meta = readMetaGroup(bytes, metaAt, fileName);
  return { ...meta, start: metaAt === 0 ? "meta-without-preamble" : "part10" };
}

function startsWithMeta(bytes: Uint8Array, at: number): boolean {
  return (
    bytes.length >= at + 8 &&
    bytes[at] === 0x02 &&
    bytes[at + 1] === 0x00 &&
    VRS.has(String.fromCharCode(bytes[at + 4] as number, bytes[at + 5] as number))
  );
}

/** Reads (0002,xxxx) elements, explicit VR little endian, until another group starts. */
function readMetaGroup(
  bytes: Uint8Array,
  start: number,
  fileName: string,
): Pick<DicomLayout, "datasetOffset" | "transferSyntaxUid" | "mediaStorageSopClassUid"> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  let transferSyntaxUid: string | undefined;
  let mediaStorageSopClassUid: string | undefined;
  while (pos + 2 <= bytes.length && view.getUint16(pos, true) === 0x0002) {
    if (pos + 8 > bytes.length) {
      throw new DicomError(fileName, "truncated", "the file ends inside its File Meta Information", pos);
    }
    const element = view.getUint16(pos + 2, true);
    const vr = String.fromCharCode(bytes[pos + 4] as number, bytes[pos + 5] as number);
    if (!VRS.has(vr)) {
      throw new DicomError(
        fileName,
        "malformed",
        `File Meta Information element (0002,${hex4(element)}) has VR "${printable(vr)}", which is not a DICOM VR`,
        pos,
      );
    }
    let length: number;
    let valueAt: number;
    if (LONG_VRS.has(vr)) {
      if (pos + 12 > bytes.length) {
        throw new DicomError(fileName, "truncated", "the file ends inside its File Meta Information", pos);
      }
      length = view.getUint32(pos + 8, true);
      valueAt = pos + 12;
    } else {
      length = view.getUint16(pos + 6, true);
      valueAt = pos + 8;
    }
    if (length === 0xffffffff || valueAt + length > bytes.length) {
      throw new DicomError(
        fileName,
        length === 0xffffffff ? "malformed" : "truncated",
        `File Meta Information element (0002,${hex4(element)}) has length ${length}, past the end of the file`,
        pos,
      );
    }
    if (element === 0x0010) transferSyntaxUid = uid(bytes, valueAt, length);
    if (element === 0x0002) mediaStorageSopClassUid = uid(bytes, valueAt, length);
    pos = valueAt + length;
  }
  return { datasetOffset: pos, transferSyntaxUid: transferSyntaxUid || undefined, mediaStorageSopClassUid };
}

/**
 * How a data set starting at `offset` is encoded, judged by walking its first elements under each of
 * explicit VR little endian, explicit VR big endian and implicit VR little endian: the group of the first
 * tag must be small (≤ 0x00FF), tags must ascend, explicit VRs must be real VRs, and each length must stay
 * inside the file. Undefined when no encoding or more than one fits: then the caller must refuse the file
 * rather than guess.
 */
export function sniffEncoding(bytes: Uint8Array, offset: number): DatasetEncoding | undefined {
  const candidates: DatasetEncoding[] = [
    { explicitVr: true, littleEndian: true },
    { explicitVr: true, littleEndian: false },
    { explicitVr: false, littleEndian: true },
  ];
  const fits = candidates.filter((c) => walks(bytes, offset, c));
  return fits.length === 1 ? fits[0] : undefined;
}

function walks(bytes: Uint8Array, offset: number, encoding: DatasetEncoding): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = encoding.littleEndian;
  let pos = offset;
  let previous = -1;
  let count = 0;
  while (count < 12 && pos + 8 <= bytes.length) {
    const group = view.getUint16(pos, le);
    const element = view.getUint16(pos + 2, le);
    const tag = group * 0x10000 + element;
    if ((count === 0 && group > 0x00ff) || tag <= previous || group === 0xfffe) return false;
    let length: number;
    let header: number;
    let vr = "";
    if (encoding.explicitVr) {
      vr = String.fromCharCode(bytes[pos + 4] as number, bytes[pos + 5] as number);
      if (!VRS.has(vr)) return false;
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > bytes.length) return count > 0;
        length = view.getUint32(pos + 8, le);
        header = 12;
      } else {
        length = view.getUint16(pos + 6, le);
        header = 8;
      }
    } else {
      length = view.getUint32(pos + 4, true);
      header = 8;
    }
    count++;
    if (tag === 0x7fe00010) return true;
    if (length === 0xffffffff) {
      // Undefined length: sequences (and UN, and encapsulated OB/OW) only; the walk cannot skip it.
      return !encoding.explicitVr || vr === "SQ" || vr === "UN" || vr === "OB" || vr === "OW";
    }
    pos += header + length;
    // Lengths past the end tell a wrong encoding apart from a right one; only later elements may be cut.
    if (pos > bytes.length) return count > 2;
    previous = tag;
  }
  return count > 0;
}

function uid(bytes: Uint8Array, at: number, length: number): string {
  let s = "";
  for (let i = at; i < at + length; i++) s += String.fromCharCode(bytes[i] as number);
  return s.replace(/[\0 ]+$/, "").trim();
}

export function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}
