/// <reference path="./modules.d.ts" />
import dicomParser, { type ByteStream, type DataSet, type Element } from "dicom-parser";
import { DicomError, describeThrown } from "./errors";
import { type DatasetEncoding, type DicomLayout, hex4, sniffEncoding } from "./layout";
import {
  describeTransferSyntax,
  EXPLICIT_BIG,
  EXPLICIT_LITTLE,
  IMPLICIT_LITTLE,
  type TransferSyntax,
  transferSyntax,
} from "./transfer-syntax";

/** A data set read by dicom-parser up to its Pixel Data, which is located but not copied. */
export interface ParsedDicom {
  fileName: string;
  /** The bytes the elements point into: the file's, or for deflate the inflated copy. */
  bytes: Uint8Array;
  dataSet: DataSet;
  /** (7FE0,0010); for encapsulated data its fragments and offset table are filled in. */
  pixelData: Element | undefined;
  transferSyntaxUid: string;
  /** undefined for a syntax we cannot decode pixels of (the data set itself is still read). */
  syntax: TransferSyntax | undefined;
  /** "sniffed" when the file had no (0002,0010) and the encoding was told from its first elements. */
  transferSyntaxFrom: "meta" | "sniffed";
  /** Byte order of the data set as read (pixel words of native big-endian data need swapping). */
  littleEndian: boolean;
  warnings: string[];
}

const PIXEL_DATA = "x7fe00010";

export async function parseDataSet(
  bytes: Uint8Array,
  layout: DicomLayout,
  fileName: string,
): Promise<ParsedDicom> {
  const warnings: string[] = [];
  const offset = layout.datasetOffset;
  if (offset >= bytes.length) {
    throw new DicomError(
      fileName,
      "malformed",
      "the file has no data set after its File Meta Information",
      offset,
    );
  }
  let uid = layout.transferSyntaxUid;
  let from: ParsedDicom["transferSyntaxFrom"] = "meta";
  const sniffed = sniffEncoding(bytes, offset);
  if (uid === undefined) {
    if (sniffed === undefined) {
      throw new DicomError(
        fileName,
        "unknown-encoding",
        layout.start === "bare-data-set"
          ? "no DICM marker at byte 128 and no File Meta Information, and the first bytes do not read as DICOM " +
              "elements in any encoding; it is not a DICOM file, or one damaged at its start"
          : "the File Meta Information has no Transfer Syntax UID (0002,0010), and the data set's first elements " +
              "do not tell implicit from explicit VR or the byte order",
        offset,
      );
    }
    uid = sniffed.explicitVr ? (sniffed.littleEndian ? EXPLICIT_LITTLE : EXPLICIT_BIG) : IMPLICIT_LITTLE;
    from = "sniffed";
    warnings.push(`No transfer syntax in the file; its data set reads as ${describeTransferSyntax(uid)}.`);
  }
  const syntax = transferSyntax(uid);
  // A syntax we cannot decode still has an explicit VR little endian data set (PS3.5 A.4), so the file can
  // be told apart as a non-image (skipped) or an image we cannot decode (an error naming the syntax).
  let encoding: DatasetEncoding = syntax ?? { explicitVr: true, littleEndian: true };
  let data = bytes;
  if (syntax?.deflated) {
    data = await inflateDataSet(bytes, offset, fileName);
  } else if (
    sniffed !== undefined &&
    (sniffed.explicitVr !== encoding.explicitVr || sniffed.littleEndian !== encoding.littleEndian)
  ) {
    // Some writers put an implicit VR data set under an explicit VR syntax; pydicom reads such files as
    // they are encoded, and so do we.
    warnings.push(
      `The data set is written as ${describeEncoding(sniffed)} although the transfer syntax ` +
        `${describeTransferSyntax(uid)} says ${describeEncoding(encoding)}; it was read as written.`,
    );
    encoding = sniffed;
  }
  const { dataSet, stream } = readElements(data, offset, encoding, fileName);
  warnings.push(...dataSet.warnings);
  const pixelData = dataSet.elements[PIXEL_DATA];
  if (pixelData !== undefined) locatePixelData(pixelData, stream, data, fileName);
  checkLengths(dataSet, data.length, fileName);
  return {
    fileName,
    bytes: data,
    dataSet,
    pixelData,
    transferSyntaxUid: uid,
    syntax,
    transferSyntaxFrom: from,
    littleEndian: encoding.littleEndian,
    warnings,
  };
}

function readElements(
  bytes: Uint8Array,
  offset: number,
  encoding: DatasetEncoding,
  fileName: string,
): { dataSet: DataSet; stream: ByteStream } {
  const parser = encoding.littleEndian
    ? dicomParser.littleEndianByteArrayParser
    : dicomParser.bigEndianByteArrayParser;
  const dataSet = new dicomParser.DataSet(parser, bytes, {});
  const stream = new dicomParser.ByteStream(parser, bytes, offset);
  dataSet.warnings = stream.warnings;
  // Stop at Pixel Data: it is located below, and elements after it (padding, signatures) are not needed.
  const options = { untilTag: PIXEL_DATA };
  try {
    if (encoding.explicitVr) dicomParser.parseDicomDataSetExplicit(dataSet, stream, bytes.length, options);
    else dicomParser.parseDicomDataSetImplicit(dataSet, stream, bytes.length, options);
  } catch (thrown) {
    const why = describeThrown(thrown);
    const cut = /overrun|maxPosition|cannot be greater|beyond|past the end|end of buffer/i.test(why);
    throw new DicomError(
      fileName,
      cut ? "truncated" : "malformed",
      `the data set could not be read (${why.replace(/^dicomParser[.:]\s*/, "")})` +
        (cut ? "; the file is truncated or an element's length is wrong" : ""),
      Math.min(stream.position, bytes.length),
    );
  }
  return { dataSet, stream };
}

/** Native: checks the value is all there. Encapsulated: walks the items to find fragments and offsets. */
function locatePixelData(element: Element, stream: ByteStream, bytes: Uint8Array, fileName: string): void {
  if (element.hadUndefinedLength) {
    const problems: string[] = [];
    try {
      dicomParser.findEndOfEncapsulatedElement(stream, element, problems);
    } catch (thrown) {
      throw new DicomError(
        fileName,
        "truncated",
        `the encapsulated Pixel Data (7FE0,0010) could not be read (${describeThrown(thrown).replace(/^dicomParser[.:]\s*/, "")})`,
        element.dataOffset,
      );
    }
    // dicom-parser walks past the end of a cut file and shortens odd items quietly; check what it found.
    (element.fragments ?? []).forEach((fragment, i) => {
      if (fragment.position + fragment.length > bytes.length) {
        throw new DicomError(
          fileName,
          "truncated",
          `fragment ${i + 1} of the encapsulated Pixel Data says it holds ${fragment.length} bytes but the file ends ` +
            `${bytes.length - fragment.position} bytes into it: the file is truncated`,
          fragment.position,
        );
      }
    });
    if (problems.some((p) => p.includes("missing sequence delimiter"))) {
      throw new DicomError(
        fileName,
        "truncated",
        "the encapsulated Pixel Data (7FE0,0010) ends without its Sequence Delimitation Item: the file is truncated",
        element.dataOffset,
      );
    }
    const odd = problems.find((p) => p.includes("unexpected tag"));
    if (odd !== undefined) {
      throw new DicomError(
        fileName,
        "malformed",
        `the encapsulated Pixel Data is malformed (${odd})`,
        element.dataOffset,
      );
    }
    return;
  }
  const end = element.dataOffset + element.length;
  if (end > bytes.length) {
    throw new DicomError(
      fileName,
      "truncated",
      `Pixel Data (7FE0,0010) says it holds ${element.length} bytes but the file ends ` +
        `${bytes.length - element.dataOffset} bytes into it: the file is truncated`,
      element.dataOffset,
    );
  }
}

/** The implicit VR reader does not check lengths against the file's end; an element past it means a cut file. */
function checkLengths(dataSet: DataSet, size: number, fileName: string): void {
  for (const element of Object.values(dataSet.elements)) {
    if (element.tag === PIXEL_DATA || element.hadUndefinedLength) continue;
    if (element.dataOffset + element.length > size) {
      const group = Number.parseInt(element.tag.slice(1, 5), 16);
      const number = Number.parseInt(element.tag.slice(5), 16);
      throw new DicomError(
        fileName,
        "truncated",
        `element (${hex4(group)},${hex4(number)}) says it holds ${element.length} bytes but the file ends before ` +
          "them: the file is truncated",
        element.dataOffset,
      );
    }
  }
}

/**
 * Deflated Explicit VR Little Endian: everything after the meta group is raw deflate (PS3.5 A.5). pako
 * rather than DecompressionStream("deflate-raw"): writers leave bytes after the deflate stream (pydicom's
 * image_dfl.dcm ends with an 8-byte CRC and length), which zlib ignores but browsers' DecompressionStream
 * rejects as junk. Loaded only for deflated files.
 */
async function inflateDataSet(bytes: Uint8Array, offset: number, fileName: string): Promise<Uint8Array> {
  const { inflateRaw } = await import("pako");
  let inflated: Uint8Array;
  try {
    inflated = inflateRaw(bytes.subarray(offset));
  } catch (thrown) {
    throw new DicomError(
      fileName,
      "malformed",
      `the deflated data set could not be inflated (${describeThrown(thrown)}); the file is damaged or truncated`,
      offset,
    );
  }
  const whole = new Uint8Array(offset + inflated.length);
  whole.set(bytes.subarray(0, offset));
  whole.set(inflated, offset);
  return whole;
}

function describeEncoding(e: DatasetEncoding): string {
  return `${e.explicitVr ? "explicit" : "implicit"} VR ${e.littleEndian ? "little" : "big"} endian`;
}
