import type { DecodedFrame } from "../../src/core/image/frame";
import { toModelInput } from "../../src/core/image/model-input";
import type { Plan } from "../../src/core/plan";
import { looksLikeDicom } from "./dicom/layout";
import { readDicom } from "./dicom/read";
import { folderOf, type ImageLabels, labelValue, normalizeKey, pathKeys } from "./image-labels";
import type { ExampleSink, ParseStats } from "./parser";
import { ImportError } from "./parser";
import { decodeRaster, rasterKind } from "./raster";
import { fnv1a32 } from "./staging";
import { type UnitKey, unitKey } from "./units";

/**
 * An image import (issue 5): every DICOM, PNG or JPEG file of the chosen folder becomes one example, told
 * apart by its bytes (DICM at 128, PNG and JPEG magic), never by its name. Each file is read, decoded, put
 * through the plan's pixel pipeline (src/core/image/model-input.ts) and handed to the sink; files that are
 * not images (DICOMDIR, SR, RT, waveforms, text) are skipped with the reason, and damaged ones reported,
 * while the import goes on. Only pixels, the label and a hash of the PatientID reach the sink: label keys
 * (patient ids, UIDs, paths) stay in this worker's memory, the holdout split hashes them, and the shard
 * writer numbers patients by the hash (workers/import/units.ts) so that one patient's images are one unit.
 */

export interface ImageSource {
  file: Blob;
  /** The file's path inside the chosen folder (webkitRelativePath), or its name. */
  path: string;
  /** How the file is named in reports: never its own name, which may hold a patient's. */
  label: string;
}

export interface ImageFileReport {
  label: string;
  outcome: "example" | "skipped" | "problem";
  /** Why a file was skipped or is a problem (a sentence naming the file by its label). */
  reason?: string;
}

export interface ImageImportOptions {
  signal?: AbortSignal;
  onProgress?(p: {
    files: number;
    filesRead: number;
    bytesRead: number;
    totalBytes: number;
    examples: number;
  }): void;
}

export interface ImageImportResult extends ParseStats {
  files: ImageFileReport[];
  examples: number;
}

/** One DICOM file is read whole (a frame needs its pixel data in one piece); larger ones are refused. */
const MAX_FILE_BYTES = 1 << 30;
const HEAD_BYTES = 2048;

export async function importImages(
  sources: ImageSource[],
  labels: ImageLabels | undefined,
  plan: Plan,
  sink: ExampleSink,
  options: ImageImportOptions = {},
): Promise<ImageImportResult> {
  const spec = plan.image;
  if (!spec)
    throw new ImportError("This plan does not read images. Choose the files the federation asked for.");
  const key = spec.labels.key;
  if (key !== "folder" && labels === undefined) {
    throw new ImportError(
      `This plan takes each image's label from a labels CSV keyed by ${key === "path" ? "the file's path in the folder" : `the DICOM attribute ${key}`}. Choose the labels CSV as well as the images.`,
    );
  }
  const totalBytes = sources.reduce((s, f) => s + f.file.size, 0);
  const files: ImageFileReport[] = [];
  let bytesRead = 0;
  let examples = 0;
  let skipped = 0;
  const report = (file: ImageFileReport) => {
    files.push(file);
    // Skipped files (not images) are listed with the reason too, so the clinician sees every file's fate.
    if (file.outcome !== "example") {
      skipped++;
      sink.problem({ line: 0, column: file.label, message: file.reason ?? "" });
    }
  };
  for (const [i, source] of sources.entries()) {
    options.signal?.throwIfAborted();
    try {
      const read = await readImage(source, plan, key);
      if (read.kind === "skip") report({ label: source.label, outcome: "skipped", reason: read.reason });
      else {
        const y = key === "folder" ? labelValue(plan, folderOf(source.path)) : lookUp(labels, read.keys);
        if (y === undefined) {
          report({ label: source.label, outcome: "problem", reason: noLabel(plan, key) });
        } else {
          await sink.add(read.x, y, read.holdoutKey, read.unit);
          examples++;
          report({ label: source.label, outcome: "example" });
        }
      }
    } catch (error) {
      if (!(error instanceof ImportError)) throw error;
      report({ label: source.label, outcome: "problem", reason: withLabel(error.message, source) });
    }
    bytesRead += source.file.size;
    options.onProgress?.({ files: sources.length, filesRead: i + 1, bytesRead, totalBytes, examples });
  }
  for (const p of labels?.problems ?? [])
    sink.problem({ line: p.line, column: "labels CSV", message: p.message });
  return { rowsRead: sources.length, rowsSkipped: skipped, imputed: {}, files, examples };
}

type Read =
  | { kind: "skip"; reason: string }
  /** `unit`: the hashed PatientID of a DICOM file that has one (its patient's images are one unit). */
  | { kind: "image"; x: Float32Array; keys: string[]; holdoutKey: number; unit?: UnitKey };

async function readImage(source: ImageSource, plan: Plan, key: string): Promise<Read> {
  const spec = plan.image as NonNullable<Plan["image"]>;
  const { file, label } = source;
  if (file.size > MAX_FILE_BYTES) {
    throw new ImportError(
      `${label} is ${(file.size / 2 ** 30).toFixed(1)} GB; image files up to 1 GB are read.`,
    );
  }
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  const raster = rasterKind(head);
  const paths = pathKeys(source.path);
  if (raster !== undefined && spec.source === "dicom") {
    return {
      kind: "skip",
      reason: `${label} is a ${raster.toUpperCase()} image; this plan reads DICOM files only (its window is in DICOM units), so it was not read.`,
    };
  }
  if (raster !== undefined) {
    const frame = await decodeRaster(file, label, head);
    // PNG and JPEG pixels are display values already: no window (the plan's window is in DICOM units).
    const x = modelInput(frame, { ...spec, window: undefined }, label);
    return {
      kind: "image",
      x,
      keys: key === "path" ? paths : [],
      holdoutKey: fnv1a32(paths.at(-1) ?? label),
    };
  }
  if (!looksLikeDicom(head)) {
    return {
      kind: "skip",
      reason: `${label} is neither DICOM nor a PNG or JPEG image (told by its first bytes), so it was not read.`,
    };
  }
  if (spec.source === "images") {
    return {
      kind: "skip",
      reason: `${label} is a DICOM file; this plan reads PNG and JPEG images only, so it was not read.`,
    };
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const wanted = key === "folder" || key === "path" ? [] : [key as "PatientID"];
  const dicom = await readDicom(bytes, {
    fileName: label,
    frame: spec.frame ?? 0,
    labelKeys: [...new Set([...wanted, "PatientID" as const, "SOPInstanceUID" as const])],
  });
  if (dicom.kind === "skip") return { kind: "skip", reason: dicom.reason };
  const x = modelInput(dicom.frame, spec, label);
  const keys = key === "path" ? paths : key === "folder" ? [] : [dicom.labelKeys[key as "PatientID"] ?? ""];
  // The same patient's images fall on the same side of the split: hashed PatientID, else the image's UID.
  const group = dicom.labelKeys.PatientID || dicom.labelKeys.SOPInstanceUID || paths.at(-1) || label;
  // DP-SGD's unit: the patient. A file without a PatientID is its own unit (no key).
  const patient = normalizeKey("PatientID", dicom.labelKeys.PatientID ?? "");
  const unit = patient === "" ? {} : { unit: unitKey(patient) };
  return { kind: "image", x, keys, holdoutKey: fnv1a32(group), ...unit };
}

function modelInput(frame: DecodedFrame, spec: NonNullable<Plan["image"]>, label: string): Float32Array {
  try {
    return toModelInput(frame, {
      width: spec.width,
      height: spec.height,
      channels: spec.channels,
      ...(spec.window ? { window: spec.window } : {}),
    });
  } catch (error) {
    throw new ImportError(`${label}: its pixels could not be prepared: ${(error as Error).message}.`);
  }
}

function lookUp(labels: ImageLabels | undefined, keys: string[]): 0 | 1 | undefined {
  for (const k of keys) {
    if (k === "") continue;
    const y = labels?.get(k);
    if (y !== undefined) return y;
  }
  return undefined;
}

function noLabel(plan: Plan, key: string): string {
  if (key === "folder") {
    return `its folder's name is neither "${plan.label.positive}" nor "${plan.label.negative}"; put it in a folder named after its label`;
  }
  const what = key === "path" ? "path" : key;
  return `the labels CSV has no row for this file's ${what}; the file was left out`;
}

/** Readers name the file by the label they were given; a message that does not gets the label first. */
function withLabel(message: string, source: ImageSource): string {
  return message.includes(source.label) ? message : `${source.label}: ${message}`;
}
