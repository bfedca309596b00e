import { decimalString, integerString, text, uint16 } from "./attributes";
import type { ParsedDicom } from "./dataset";
import { DicomError } from "./errors";

/** The Image Pixel module (PS3.3 C.7.6.3) and rescale of one file, checked for what the decoders handle. */
export interface PixelInfo {
  rows: number;
  columns: number;
  samplesPerPixel: 1 | 3;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  /** As written in the file. */
  photometricInterpretation: string;
  planarConfiguration: 0 | 1;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
}

const GREY = new Set(["MONOCHROME1", "MONOCHROME2"]);
const COLOUR = new Set(["RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"]);

export function readPixelInfo(parsed: ParsedDicom): PixelInfo {
  const { dataSet: ds, fileName } = parsed;
  const need = (tag: string, name: string): number => {
    const v = uint16(ds, tag, name, fileName);
    if (v === undefined) {
      throw new DicomError(
        fileName,
        "missing-attribute",
        `it has Pixel Data but no ${name} (${tag.slice(1, 5)},${tag.slice(5)}), so its pixels cannot be read`,
      );
    }
    return v;
  };
  const rows = need("x00280010", "Rows");
  const columns = need("x00280011", "Columns");
  const bitsAllocated = need("x00280100", "Bits Allocated");
  const bitsStored = uint16(ds, "x00280101", "Bits Stored", fileName) ?? bitsAllocated;
  const highBit = uint16(ds, "x00280102", "High Bit", fileName) ?? bitsStored - 1;
  const pixelRepresentation = uint16(ds, "x00280103", "Pixel Representation", fileName) ?? 0;
  const samplesPerPixel = uint16(ds, "x00280002", "Samples per Pixel", fileName) ?? 1;
  const planarConfiguration = uint16(ds, "x00280006", "Planar Configuration", fileName) ?? 0;
  const photometric = text(ds, "x00280004")?.toUpperCase() ?? (samplesPerPixel === 1 ? "MONOCHROME2" : "RGB");
  const frames = integerString(ds, "x00280008", "Number of Frames", fileName) ?? 1;

  const bad = (what: string) => new DicomError(fileName, "bad-attribute", what);
  const unsupported = (what: string) => new DicomError(fileName, "unsupported", what);
  if (rows === 0 || columns === 0)
    throw bad(`its image is ${rows}×${columns} pixels: Rows and Columns must not be 0`);
  if (bitsAllocated === 1) {
    throw unsupported(
      "its pixels are 1 bit each (bit-packed, Bits Allocated 1), which this importer does not read",
    );
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw unsupported(`Bits Allocated is ${bitsAllocated}; this importer reads 8, 16 and 32`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw bad(`Bits Stored ${bitsStored} does not fit in Bits Allocated ${bitsAllocated}`);
  }
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw bad(
      `High Bit ${highBit} does not fit Bits Stored ${bitsStored} in Bits Allocated ${bitsAllocated}`,
    );
  }
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) {
    throw bad(`Pixel Representation is ${pixelRepresentation}; it must be 0 (unsigned) or 1 (signed)`);
  }
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) {
    throw unsupported(
      `it has ${samplesPerPixel} samples per pixel; this importer reads 1 (grey) and 3 (colour)`,
    );
  }
  if (planarConfiguration !== 0 && planarConfiguration !== 1) {
    throw bad(`Planar Configuration is ${planarConfiguration}; it must be 0 or 1`);
  }
  if (photometric === "PALETTE COLOR") {
    throw unsupported(
      "it is PALETTE COLOR (indexed colour through a lookup table), which this importer does not read",
    );
  }
  const grey = GREY.has(photometric);
  if (!grey && !COLOUR.has(photometric)) {
    throw unsupported(`its Photometric Interpretation is ${photometric}, which this importer does not read`);
  }
  if (grey !== (samplesPerPixel === 1)) {
    throw bad(
      `Photometric Interpretation ${photometric} does not go with ${samplesPerPixel} samples per pixel`,
    );
  }
  if (frames < 0) throw bad(`Number of Frames is ${frames}`);
  const slope = decimalString(ds, "x00281053", "Rescale Slope", fileName) ?? 1;
  const intercept = decimalString(ds, "x00281052", "Rescale Intercept", fileName) ?? 0;
  if (slope === 0) throw bad("Rescale Slope is 0, which would make every pixel the same");
  if (ds.elements.x00283000 !== undefined) {
    throw unsupported(
      "its Modality LUT is a lookup table (Modality LUT Sequence 0028,3000), not Rescale Slope and Intercept; " +
        "this importer reads only the latter",
    );
  }
  return {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation,
    photometricInterpretation: photometric,
    planarConfiguration: samplesPerPixel === 1 ? 0 : planarConfiguration,
    // PS3.3 C.7.6.6: a value of 0 is not allowed, but files have it; pydicom reads it as 1, and so do we.
    numberOfFrames: Math.max(frames, 1),
    rescaleSlope: slope,
    rescaleIntercept: intercept,
  };
}
