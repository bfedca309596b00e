import { expose } from "comlink";
import { inputWidth, type Plan } from "../src/core/plan";
import { Sha256 } from "../src/core/sha256";
import { openDb } from "../src/store/db";
import { importCsv as parseCsv } from "./import/csv";
import { type ImportSummary, importDataset, toSummary } from "./import/shard-writer";

export type { ImportSummary } from "./import/shard-writer";

export interface ImportProgress {
  /** "hashing": the file's SHA-256 for the manifest; "reading": parsing and storing examples. */
  phase: "hashing" | "reading";
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
      const sha256 = await hashFile(file, (bytesRead) =>
        onProgress?.({ phase: "hashing", bytesRead, totalBytes: file.size, rowsRead: 0 }),
      );
      const meta = {
        federationId,
        planHash,
        fileName: file.name,
        sources: [{ name: file.name, size: file.size, sha256 }],
        numFeatures: inputWidth(plan),
        holdoutFraction: plan.evaluation.holdoutFraction,
      };
      const row = await importDataset(openDb(), meta, (sink) =>
        parseCsv(file, plan, sink, {
          onProgress: (bytesRead, totalBytes, rowsRead) =>
            onProgress?.({ phase: "reading", bytesRead, totalBytes, rowsRead }),
        }),
      );
      return toSummary(row);
    } finally {
      running = false;
    }
  },
};

/**
 * The file's SHA-256, streamed (a multi-gigabyte export never sits in memory), so the manifest says which
 * file a dataset came from and a clinician can match it with the export they were given.
 */
async function hashFile(file: Blob, onProgress: (bytesRead: number) => void): Promise<string> {
  const sha = new Sha256();
  const reader = file.stream().getReader();
  let read = 0;
  let reported = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    sha.update(value);
    read += value.length;
    if (read - reported >= 8 << 20) {
      onProgress(read);
      reported = read;
    }
  }
  return sha.digestHex();
}

export type ImportWorkerApi = typeof api;
expose(api);
