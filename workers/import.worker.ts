import { expose } from "comlink";
import { encodeFeatures } from "../src/core/features";
import { cohortSpecOf, inputWidth, type Plan } from "../src/core/plan";
import { openDb, type SourceFile } from "../src/store/db";
import { importCsv as parseCsv } from "./import/csv";
import { type Hashing, hashInBackground } from "./import/hashing";
import { ImportError } from "./import/parser";
import { type ImportSummary, importDataset, toSummary } from "./import/shard-writer";
import { groupsByPatient } from "./import/units";

export type { ImportSummary } from "./import/shard-writer";

export interface ImportProgress {
  /**
   * "hashing": a file's SHA-256 for the manifest; "reading": parsing (and for CSV, storing examples);
   * "deriving": a FHIR or OMOP import's second pass, patient by patient.
   */
  phase: "hashing" | "reading" | "deriving";
  /** For an import of several files: which one, 1-based, of how many. */
  file?: number;
  files?: number;
  bytesRead: number;
  totalBytes: number;
  rowsRead: number;
}

let running = false;

const api = {
  /**
   * Imports a CSV as the federation's dataset, replacing the previous one only once the new one is
   * complete. Rejects with ImportError (the file's fault, message says what to fix) or Error (our bug or
   * the browser store). The page cancels by terminating the worker; the next import clears what was left.
   */
  async importCsv(
    file: File,
    plan: Plan,
    federationId: string,
    planHash: string,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<ImportSummary> {
    if (!(file instanceof Blob)) throw new TypeError("importCsv needs a File; this is a bug in fedward.");
    if (running) throw new Error("An import is already running in this tab. Wait for it to finish.");
    running = true;
    try {
      // Hashed in a worker of its own while this one parses.
      const hashing = hashInBackground([file]);
      const meta = {
        federationId,
        planHash,
        fileName: file.name,
        numFeatures: inputWidth(plan),
        holdoutFraction: plan.evaluation.holdoutFraction,
        units: groupsByPatient(plan),
      };
      const row = await importDataset(openDb(), meta, async (sink) => {
        const stats = await parseCsv(file, plan, sink, {
          onProgress: (bytesRead, totalBytes, rowsRead) =>
            onProgress?.({ phase: "reading", bytesRead, totalBytes, rowsRead }),
        });
        const [sha256] = await hashesOf(hashing, [file], onProgress);
        return { ...stats, sources: [{ name: file.name, size: file.size, sha256: sha256 as string }] };
      });
      return toSummary(row);
    } finally {
      running = false;
    }
  },

  /**
   * Imports a FHIR (NDJSON, Bundles) or OMOP CDM export, several files at once, for a cohort plan: the
   * records are joined by patient in IndexedDB staging without identifiers (workers/import/cohort-import.ts),
   * each patient becomes one example, and the dataset replaces the previous one only once complete.
   */
  async importCohort(
    files: File[],
    plan: Plan,
    federationId: string,
    planHash: string,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<ImportSummary> {
    const spec = cohortSpecOf(plan);
    if (!spec) {
      throw new ImportError("This plan reads one CSV file, not a FHIR or OMOP export. Choose the CSV file.");
    }
    if (files.length === 0)
      throw new ImportError("No files were chosen. Choose the export's files or folder.");
    if (running) throw new Error("An import is already running in this tab. Wait for it to finish.");
    running = true;
    try {
      const labels = new Map(files.map((f, i) => [f.name, fileLabel(i, files.length, f.name)]));
      const hashing = hashInBackground(files);
      const db = openDb();
      const meta = {
        federationId,
        planHash,
        fileName: `${files.length} file${files.length === 1 ? "" : "s"} of a patient-record export`,
        numFeatures: inputWidth(plan),
        holdoutFraction: plan.evaluation.holdoutFraction,
      };
      const row = await importDataset(db, meta, async (sink) => {
        const imputed: Record<string, number> = {};
        let skipped = 0;
        // Loaded on first use: fhirpath and its R4 model (about 250 kB gzipped) stay out of CSV imports.
        const { importCohort: readCohort } = await import("./import/cohort-import");
        const result = await readCohort(
          files,
          spec,
          db,
          async (holdoutKey, outcome) => {
            if (outcome.kind === "excluded") return;
            const encoded = encodeFeatures(plan, outcome.values);
            if (Array.isArray(encoded)) {
              skipped++;
              for (const { feature, message } of encoded) {
                sink.problem({
                  line: 0,
                  column: plan.features[feature]?.name ?? "",
                  message: `a patient: ${message}`,
                });
              }
              return;
            }
            for (const f of encoded.imputed) {
              const name = plan.features[f]?.name as string;
              imputed[name] = (imputed[name] ?? 0) + 1;
            }
            // The patient's stable key decides the split, so one patient is held out at every import.
            await sink.add(encoded.x, outcome.label, holdoutKey);
          },
          {
            onProgress: (p) =>
              onProgress?.({
                phase: p.phase,
                file: p.fileIndex + 1,
                files: p.files,
                bytesRead: p.bytesRead,
                totalBytes: p.totalBytes,
                rowsRead: p.patients,
              }),
          },
        );
        for (const p of result.problems) {
          sink.problem({
            line: p.line ?? 0,
            column: labels.get(p.file) ?? "(export)",
            message: withoutNames(p.message, labels),
          });
        }
        const excluded = Object.values(result.excluded).reduce((a, b) => a + b, 0);
        const hashes = await hashesOf(hashing, files, onProgress);
        const counted = new Map(result.files.map((f) => [labels.get(f.name), f]));
        const perFile = files.map((file, i): SourceFile => {
          const s = { name: labels.get(file.name) as string, size: file.size, sha256: hashes[i] as string };
          const f = counted.get(s.name);
          return f ? { ...s, records: f.resources, problems: f.problems } : s;
        });
        return { rowsRead: result.patients, rowsSkipped: skipped + excluded, imputed, sources: perFile };
      });
      return toSummary(row);
    } finally {
      running = false;
    }
  },

  /**
   * Imports an image plan's folder (DICOM, PNG, JPEG; workers/import/image-import.ts): one example per
   * image, labels from `labelsFile` (or the one CSV among the files) or from folder names. `paths` are the
   * files' paths inside the chosen folder (webkitRelativePath), given separately because a File's
   * relative path does not cross to a worker.
   */
  async importImages(
    files: File[],
    paths: string[],
    labelsFile: File | undefined,
    plan: Plan,
    federationId: string,
    planHash: string,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<ImportSummary> {
    if (!plan.image) {
      throw new ImportError("This plan does not read images. Choose the files the federation asked for.");
    }
    if (files.length === 0) throw new ImportError("No files were chosen. Choose the image folder.");
    if (running) throw new Error("An import is already running in this tab. Wait for it to finish.");
    running = true;
    try {
      const csvs = files.filter((f) => /\.(csv|tsv)$/i.test(f.name));
      const needsLabels = plan.image.labels.key !== "folder";
      let labelSource = labelsFile;
      if (!labelSource && needsLabels && csvs.length === 1) labelSource = csvs[0];
      if (!labelSource && needsLabels && csvs.length > 1) {
        throw new ImportError(
          `The folder holds ${csvs.length} CSV files; choose which one is the labels CSV with "Labels CSV".`,
        );
      }
      const images = files
        .map((file, i) => ({ file, path: paths[i] ?? file.name }))
        .filter(({ file }) => file !== labelSource);
      const all = labelSource ? [...images.map((s) => s.file), labelSource] : images.map((s) => s.file);
      const hashing = hashInBackground(all);
      const db = openDb();
      const labelOf = (i: number, name: string) =>
        i < images.length ? fileLabel(i, images.length, name) : "the labels CSV";
      const meta = {
        federationId,
        planHash,
        fileName: `${images.length} image file${images.length === 1 ? "" : "s"}`,
        numFeatures: inputWidth(plan),
        holdoutFraction: plan.evaluation.holdoutFraction,
        units: groupsByPatient(plan),
      };
      const row = await importDataset(db, meta, async (sink) => {
        const { importImages: readImages, readImageLabels } = await import("./import/image-pipeline");
        const labels = labelSource ? await readImageLabels(labelSource, plan) : undefined;
        const result = await readImages(
          images.map(({ file, path }, i) => ({ file, path, label: labelOf(i, file.name) })),
          labels,
          plan,
          sink,
          {
            onProgress: (p) =>
              onProgress?.({
                phase: "reading",
                file: p.filesRead,
                files: p.files,
                bytesRead: p.bytesRead,
                totalBytes: p.totalBytes,
                rowsRead: p.examples,
              }),
          },
        );
        const hashes = await hashesOf(hashing, all, onProgress);
        const perFile = all.map((file, i): SourceFile => {
          const base = { name: labelOf(i, file.name), size: file.size, sha256: hashes[i] as string };
          const r = result.files[i];
          if (!r) return base;
          return {
            ...base,
            records: r.outcome === "example" ? 1 : 0,
            problems: r.outcome === "problem" ? 1 : 0,
          };
        });
        return { ...result, sources: perFile };
      });
      return toSummary(row);
    } finally {
      running = false;
    }
  },
};

/**
 * A file's name in the manifest and in problems of a multi-file export: its position and extension only.
 * Exports name files after patients (Synthea's bundles are "Given_Family_<uuid>.json.gz"), and names
 * must not reach IndexedDB.
 */
function fileLabel(index: number, count: number, name: string): string {
  const extension = /(\.[a-z]+)+$/i.exec(name)?.[0] ?? "";
  return `file ${index + 1} of ${count}${extension ? ` (${extension})` : ""}`;
}

/**
 * The files' SHA-256s once the background hashing is done. Hashing usually ends before parsing; if not,
 * the page sees a "hashing" phase with the bytes hashed until it does.
 */
async function hashesOf(
  hashing: Hashing,
  files: Blob[],
  onProgress: ((p: ImportProgress) => void) | undefined,
): Promise<string[]> {
  const totalBytes = files.reduce((sum, f) => sum + f.size, 0);
  const report = () =>
    onProgress?.({ phase: "hashing", bytesRead: hashing.bytesHashed(), totalBytes, rowsRead: 0 });
  const timer = setInterval(report, 250);
  try {
    return await hashing.done;
  } finally {
    clearInterval(timer);
  }
}

/** Replaces every file name in a message by its label (the readers name the file they complain about). */
function withoutNames(message: string, names: Map<string, string>): string {
  let out = message;
  for (const [name, label] of names) out = out.split(name).join(label);
  return out;
}

export type ImportWorkerApi = typeof api;
expose(api);
