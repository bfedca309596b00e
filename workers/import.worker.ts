import { expose } from "comlink";
import { inputWidth, type Plan } from "../src/core/plan";
import { openDb } from "../src/store/db";
import { importCsv as parseCsv } from "./import/csv";
import { type ImportSummary, importDataset, toSummary } from "./import/shard-writer";

export type { ImportSummary } from "./import/shard-writer";

export interface ImportProgress {
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
      const meta = {
        federationId,
        planHash,
        fileName: file.name,
        numFeatures: inputWidth(plan),
        holdoutFraction: plan.evaluation.holdoutFraction,
      };
      const row = await importDataset(openDb(), meta, (sink) =>
        parseCsv(file, plan, sink, {
          onProgress: (bytesRead, totalBytes, rowsRead) => onProgress?.({ bytesRead, totalBytes, rowsRead }),
        }),
      );
      return toSummary(row);
    } finally {
      running = false;
    }
  },
};

export type ImportWorkerApi = typeof api;
expose(api);
