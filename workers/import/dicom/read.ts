/**
 * One DICOM file's bytes → one frame ready for the pixel maths, or a skip, or a DicomError. In the import
 * worker (bundled by Vite):
 *
 *   configureDicomCodecs({ wasm: dicomWasmUrls });              // codecs.ts, wasm-urls.ts: once
 *   const read = await readDicom(bytes, { fileName, frame: "middle", labelKeys: ["SOPInstanceUID"] });
 *   if (read.kind === "image") x = toModelInput(read.frame, { width, height, channels, window });
 *
 * Detection is by content (DICM at byte 128, or a sniffed bare data set), never by file name; looksLikeDicom
 * (layout.ts) tells DICOM files in a folder apart from the first 2 KiB. Parsing is dicom-parser's; pixels
 * are decoded by decode.ts; the maths (rescale, fixed window, colour, resize) is src/core/image.
 */
import { chooseFrame, type DecodedFrame, type FrameChoice } from "../../../src/core/image/frame";
import { text } from "./attributes";
import { parseDataSet } from "./dataset";
import { decodeFrame } from "./decode";
import { DicomError } from "./errors";
import { readLayout } from "./layout";
import { readPixelInfo } from "./pixel-info";
import { MEDIA_STORAGE_DIRECTORY, notAnImage } from "./sop-class";
import { describeTransferSyntax } from "./transfer-syntax";

/**
 * Attributes a labels CSV can be keyed by. They are for joining labels only: they identify patients and
 * studies, so the caller must hash them (keyed, per federation) before anything is stored, and must never
 * store or send them as they are.
 */
export const LABEL_KEYS = [
  "SOPInstanceUID",
  "PatientID",
  "AccessionNumber",
  "StudyInstanceUID",
  "SeriesInstanceUID",
] as const;
export type LabelKey = (typeof LABEL_KEYS)[number];

const KEY_TAGS: Record<LabelKey, string> = {
  SOPInstanceUID: "x00080018",
  PatientID: "x00100020",
  AccessionNumber: "x00080050",
  StudyInstanceUID: "x0020000d",
  SeriesInstanceUID: "x0020000e",
};

export interface ReadDicomOptions {
  /** Named in errors and skips. */
  fileName: string;
  /** Which frame of a multi-frame image; default 0. */
  frame?: FrameChoice;
  /** Label key attributes to hand back (see LABEL_KEYS); none unless asked. */
  labelKeys?: readonly LabelKey[];
}

/**
 * An image, reduced to what training needs: one frame's pixels, its geometry and a few non-identifying
 * descriptors. No names, dates of birth or other demographics are read out of the file.
 */
export interface DicomImage {
  kind: "image";
  fileName: string;
  /** The chosen frame, ready for toModelInput (src/core/image/model-input.ts). */
  frame: DecodedFrame;
  frameIndex: number;
  numberOfFrames: number;
  rows: number;
  columns: number;
  /** Row and column spacing in mm (0028,0030), when the file has it. */
  pixelSpacing: [number, number] | undefined;
  modality: string | undefined;
  sopClassUid: string | undefined;
  transferSyntaxUid: string;
  /** Transfer syntax's name, for reports. */
  transferSyntax: string;
  /** Photometric Interpretation as written in the file (frame.photometric is what the samples are now). */
  photometricInterpretation: string;
  /** The label keys asked for that the file has; raw identifiers, to be hashed by the caller before storage. */
  labelKeys: Partial<Record<LabelKey, string>>;
  /** Oddities that did not stop the read (e.g. an implicit VR data set under an explicit VR syntax). */
  warnings: string[];
}

/** A readable DICOM file that is not an image to train on (DICOMDIR, SR, RT, waveform, no pixels). */
export interface DicomSkip {
  kind: "skip";
  fileName: string;
  /** A plain sentence: "it is a Structured Report (SOP Class …), not an image". */
  reason: string;
  sopClassUid: string | undefined;
  modality: string | undefined;
}

/**
 * One DICOM file's bytes → an image frame or a skip. Throws DicomError (an ImportError: the file's fault,
 * with the file name, what is wrong and the byte offset where known) for files that cannot be read.
 * Compressed frames load their decoder on first use (codecs.ts).
 */
export async function readDicom(
  bytes: Uint8Array,
  options: ReadDicomOptions,
): Promise<DicomImage | DicomSkip> {
  const { fileName } = options;
  if (bytes.length === 0) throw new DicomError(fileName, "not-dicom", "the file is empty");
  const layout = readLayout(bytes, fileName);
  if (layout.mediaStorageSopClassUid === MEDIA_STORAGE_DIRECTORY) {
    return skip(fileName, notAnImage(MEDIA_STORAGE_DIRECTORY) as string, MEDIA_STORAGE_DIRECTORY, undefined);
  }
  const parsed = await parseDataSet(bytes, layout, fileName);
  const ds = parsed.dataSet;
  const sopClassUid = text(ds, "x00080016") ?? layout.mediaStorageSopClassUid;
  const modality = text(ds, "x00080060");
  if (ds.elements.x00041220 !== undefined) {
    return skip(fileName, notAnImage(MEDIA_STORAGE_DIRECTORY) as string, sopClassUid, modality);
  }
  const notImage = notAnImage(sopClassUid);
  if (notImage !== undefined) return skip(fileName, notImage, sopClassUid, modality);
  if (parsed.pixelData === undefined) {
    const what = sopClassUid === undefined ? "" : ` (SOP Class ${sopClassUid})`;
    return skip(
      fileName,
      `it has no Pixel Data (7FE0,0010)${what}, so there is no image in it`,
      sopClassUid,
      modality,
    );
  }
  const info = readPixelInfo(parsed);
  let frameIndex: number;
  try {
    frameIndex = chooseFrame(info.numberOfFrames, options.frame ?? 0);
  } catch (thrown) {
    throw new DicomError(fileName, "no-such-frame", (thrown as Error).message);
  }
  const frame = await decodeFrame(parsed, info, frameIndex);
  const labelKeys: Partial<Record<LabelKey, string>> = {};
  for (const key of options.labelKeys ?? []) {
    const value = text(ds, KEY_TAGS[key]);
    if (value !== undefined) labelKeys[key] = value;
  }
  return {
    kind: "image",
    fileName,
    frame,
    frameIndex,
    numberOfFrames: info.numberOfFrames,
    rows: info.rows,
    columns: info.columns,
    pixelSpacing: readSpacing(parsed.dataSet),
    modality,
    sopClassUid,
    transferSyntaxUid: parsed.transferSyntaxUid,
    transferSyntax: describeTransferSyntax(parsed.transferSyntaxUid),
    photometricInterpretation: info.photometricInterpretation,
    labelKeys,
    warnings: parsed.warnings,
  };
}

function skip(
  fileName: string,
  reason: string,
  sopClassUid: string | undefined,
  modality: string | undefined,
): DicomSkip {
  return { kind: "skip", fileName, reason, sopClassUid, modality };
}

/** Pixel Spacing is informative only: a malformed value is dropped rather than failing the file. */
function readSpacing(ds: Parameters<typeof text>[0]): [number, number] | undefined {
  const raw = text(ds, "x00280030");
  if (raw === undefined) return undefined;
  const parts = raw.split("\\").map((p) => Number(p.trim()));
  if (parts.length < 2 || !parts.every((p) => Number.isFinite(p) && p > 0)) return undefined;
  return [parts[0] as number, parts[1] as number];
}
