/**
 * One decoded frame of a DICOM image as the decoders (workers/import/dicom) hand it to the pixel maths.
 * Nothing here identifies a patient: samples and the attributes needed to turn them into intensities.
 */

/** Photometric interpretations the pixel maths understands (PS3.3 C.7.6.3.1.2). */
export type Photometric = "MONOCHROME1" | "MONOCHROME2" | "RGB" | "YBR_FULL" | "YBR_FULL_422";

export interface DecodedFrame {
  rows: number;
  columns: number;
  samplesPerPixel: 1 | 3;
  /** Size of each sample's container: the samples array is Uint8Array, Uint16Array or Uint32Array. */
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  /** Bit of the container holding the stored value's most significant bit (PS3.5 8.1.1). */
  highBit: number;
  /** 0: unsigned; 1: two's complement (sign-extended from bit bitsStored - 1). */
  pixelRepresentation: 0 | 1;
  /**
   * What the samples are now. A decoder that already converted colour says so: a JPEG baseline file whose
   * attribute says YBR_FULL_422 comes out of libjpeg-turbo as RGB. YBR_FULL_422 here means the native
   * (uncompressed) layout Y1 Y2 Cb Cr per two pixels.
   */
  photometric: Photometric;
  /** 0: R1 G1 B1 R2 G2 B2 …; 1: all R, then all G, then all B (PS3.3 C.7.6.3.1.3). 0 for grey. */
  planarConfiguration: 0 | 1;
  /** The frame's raw sample words in native byte order, high bits not yet masked. */
  samples: Uint8Array | Uint16Array | Uint32Array;
  /** Modality LUT as Rescale Slope and Intercept (PS3.3 C.11.1.1.2); 1 and 0 when the file has none. */
  rescaleSlope: number;
  rescaleIntercept: number;
}

/** Number of sample words a frame must hold. YBR_FULL_422 keeps two samples per pixel (PS3.3 C.7.6.3.1.2). */
export function expectedSampleCount(
  frame: Pick<DecodedFrame, "rows" | "columns" | "samplesPerPixel" | "photometric">,
): number {
  const pixels = frame.rows * frame.columns;
  return frame.photometric === "YBR_FULL_422" ? pixels * 2 : pixels * frame.samplesPerPixel;
}

/** Throws RangeError when the frame's fields disagree with each other: a decoder's bug, not a file's. */
export function checkFrame(frame: DecodedFrame): void {
  const { rows, columns, bitsAllocated, bitsStored, highBit, samplesPerPixel, photometric } = frame;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1) {
    throw new RangeError(`frame size ${rows}×${columns} is not a positive integer size`);
  }
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new RangeError(`bitsStored ${bitsStored} does not fit bitsAllocated ${bitsAllocated}`);
  }
  if (!Number.isInteger(highBit) || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw new RangeError(`highBit ${highBit} does not fit bitsStored ${bitsStored} in ${bitsAllocated} bits`);
  }
  const grey = photometric === "MONOCHROME1" || photometric === "MONOCHROME2";
  if (grey !== (samplesPerPixel === 1)) {
    throw new RangeError(`${photometric} with ${samplesPerPixel} samples per pixel`);
  }
  if (photometric === "YBR_FULL_422" && (columns % 2 !== 0 || frame.planarConfiguration !== 0)) {
    throw new RangeError("YBR_FULL_422 needs an even number of columns and planar configuration 0");
  }
  const container = frame.samples.BYTES_PER_ELEMENT * 8;
  if (container !== bitsAllocated) {
    throw new RangeError(`samples are ${container}-bit words but bitsAllocated is ${bitsAllocated}`);
  }
  const expected = expectedSampleCount(frame);
  if (frame.samples.length !== expected) {
    throw new RangeError(
      `frame holds ${frame.samples.length} samples; ${rows}×${columns} ${photometric} needs ${expected}`,
    );
  }
  if (
    !Number.isFinite(frame.rescaleSlope) ||
    frame.rescaleSlope === 0 ||
    !Number.isFinite(frame.rescaleIntercept)
  ) {
    throw new RangeError(
      `rescale slope ${frame.rescaleSlope} and intercept ${frame.rescaleIntercept} are not usable`,
    );
  }
}

/** Which frame of a multi-frame image to use: an index from 0, or "middle" = floor((frames - 1) / 2). */
export type FrameChoice = number | "middle";

/** The 0-based frame index a choice means for an image of numberOfFrames frames; RangeError if there is none. */
export function chooseFrame(numberOfFrames: number, choice: FrameChoice): number {
  const index = choice === "middle" ? Math.floor((numberOfFrames - 1) / 2) : choice;
  if (!Number.isInteger(index) || index < 0 || index >= numberOfFrames) {
    throw new RangeError(`frame ${String(choice)} does not exist: the image has ${numberOfFrames} frame(s)`);
  }
  return index;
}
