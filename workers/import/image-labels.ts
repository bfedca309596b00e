import Papa from "papaparse";
import type { Plan } from "../../src/core/plan";
import { ImportError } from "./parser";

/**
 * The labels of an image import: a labels CSV mapping a key (a DICOM attribute's value or a file's path
 * in the chosen folder) to the plan's positive or negative label, or the name of the folder holding each
 * file. Keys are held in the import worker's memory only, to find each file's label; they never reach
 * IndexedDB (they can be patient ids or accession numbers).
 */

type ImageSpec = NonNullable<Plan["image"]>;
export type ImageLabelKey = ImageSpec["labels"]["key"];

/** A labels CSV is read whole; one line per image is small, but a wrong file chosen would not be. */
const MAX_LABELS_BYTES = 64 << 20;

export interface LabelProblem {
  line: number;
  message: string;
}

export interface ImageLabels {
  key: ImageLabelKey;
  /** The label of a key (see normalizeKey), or undefined when the CSV has no row for it. */
  get(key: string): 0 | 1 | undefined;
  size: number;
  problems: LabelProblem[];
}

/** Path keys compare with / separators and no leading "./" or "/"; attribute keys without DICOM padding. */
export function normalizeKey(key: ImageLabelKey, value: string): string {
  if (key === "path")
    return value
      .trim()
      .replace(/\\/g, "/")
      .replace(/^(\.\/|\/)+/, "");
  // DICOM pads values to even length with a space (or NUL for UIDs): PS3.5 6.2.
  return value.replace(/[\s\0]+$/, "").trim();
}

/** The candidates a file's path may be listed as: relative to the chosen folder, or with its name first. */
export function pathKeys(relativePath: string): string[] {
  const path = normalizeKey("path", relativePath);
  const slash = path.indexOf("/");
  return slash < 0 ? [path] : [path, path.slice(slash + 1)];
}

/** The folder directly holding the file ("" for a file chosen on its own). */
export function folderOf(relativePath: string): string {
  const parts = normalizeKey("path", relativePath).split("/");
  return parts.length > 1 ? (parts[parts.length - 2] as string) : "";
}

/** The plan's label for a label text, or undefined when it is neither label. */
export function labelValue(plan: Plan, text: string): 0 | 1 | undefined {
  const t = text.trim();
  if (t === plan.label.positive) return 1;
  if (t === plan.label.negative) return 0;
  return undefined;
}

export async function readImageLabels(file: Blob & { name: string }, plan: Plan): Promise<ImageLabels> {
  const spec = plan.image;
  if (!spec) throw new ImportError("This plan does not read images; it needs no labels file.");
  const key = spec.labels.key;
  if (key === "folder") {
    throw new ImportError(
      `This plan takes each image's label from the name of its folder ("${plan.label.positive}" or ` +
        `"${plan.label.negative}"); it needs no labels file. Choose only the image folder.`,
    );
  }
  if (file.size > MAX_LABELS_BYTES) {
    throw new ImportError(
      `${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MB; a labels file of up to 64 MB is read. Check that it is the labels CSV.`,
    );
  }
  const keyColumn = spec.labels.column ?? key;
  const labelColumn = spec.labels.labelColumn ?? "label";
  const text = (await file.text()).replace(/^\uFEFF/, "");
  const parsed = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: "greedy" });
  const columns = parsed.meta.fields ?? [];
  for (const [role, column] of [
    ["key", keyColumn],
    ["label", labelColumn],
  ] as const) {
    if (!columns.includes(column)) {
      throw new ImportError(
        `${file.name} has no column "${column}" (the plan's image.labels.${role === "key" ? "column" : "labelColumn"}); ` +
          `its header has ${columns.length} columns: ${columns.map((c) => `"${c.slice(0, 40)}"`).join(", ")}. ` +
          "Choose the labels CSV the federation described, or rename the column.",
      );
    }
  }
  const labels = new Map<string, 0 | 1>();
  const problems: LabelProblem[] = [];
  parsed.data.forEach((row, i) => {
    const line = i + 2;
    const k = normalizeKey(key, row[keyColumn] ?? "");
    if (k === "") {
      problems.push({ line, message: `column "${keyColumn}" is empty; the row was left out` });
      return;
    }
    const y = labelValue(plan, row[labelColumn] ?? "");
    if (y === undefined) {
      problems.push({
        line,
        message: `column "${labelColumn}" is neither "${plan.label.positive}" nor "${plan.label.negative}"; the row was left out`,
      });
      return;
    }
    const before = labels.get(k);
    if (before !== undefined && before !== y) {
      problems.push({
        line,
        message: `the same ${key} was labelled both ways earlier; the first label is kept`,
      });
      return;
    }
    labels.set(k, y);
  });
  return { key, get: (k) => labels.get(normalizeKey(key, k)), size: labels.size, problems };
}
