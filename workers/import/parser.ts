import type { Plan } from "../../src/core/plan";
import type { ImportProblem, SourceFile } from "../../src/store/db";
import type { UnitKey } from "./units";

/**
 * What every importer (CSV today; FHIR, OMOP, DICOM later) feeds: already-normalised features and a 0/1
 * label. A sink never sees a raw row, so no importer can store a patient identifier by accident.
 */
export interface ExampleSink {
  /**
   * `x` holds the plan's features in plan order, (value - mean) / std; `line` is 1-based, header = 1 (any
   * stable number per example: it decides the holdout split). `unit`, where the plan groups examples by
   * patient, is the hash of the example's patient (workers/import/units.ts): examples with the same key are
   * one unit, on one side of the split; without a key an example is a unit of its own.
   */
  add(x: Float32Array, y: 0 | 1, line: number, unit?: UnitKey): Promise<void> | void;
  /** A skipped row's problem; a row with several bad cells reports each of them. */
  problem(problem: ImportProblem): void;
}

export interface ImportOptions {
  /** Named in error messages; defaults to the File's name. */
  fileName?: string;
  onProgress?(bytesRead: number, totalBytes: number, rowsRead: number): void;
  signal?: AbortSignal;
}

export interface ParseStats {
  /** Data rows read (blank lines and the header not counted). */
  rowsRead: number;
  /** Rows with at least one problem, not given to the sink. */
  rowsSkipped: number;
  /** Missing values filled in by the plan's rule, per feature name. */
  imputed: Record<string, number>;
  /** The manifest's files with what was read from each, when the importer counts per file. */
  sources?: SourceFile[];
}

export type Importer = (
  source: Blob | string,
  plan: Plan,
  sink: ExampleSink,
  options?: ImportOptions,
) => Promise<ParseStats>;

/** "Your file" errors: the user can fix them by choosing or editing the file, unlike our bugs. */
export class ImportError extends Error {
  override name = "ImportError";
}

export function sourceName(source: Blob | string, fileName?: string): string {
  if (fileName !== undefined) return fileName;
  if (typeof source !== "string" && "name" in source && typeof source.name === "string") return source.name;
  return "the file";
}

/** Quotes a cell for a message, cut short so a long free-text cell cannot flood the problem list. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}
