import { readFileSync } from "node:fs";
import { inputWidth, type Plan, parsePlan } from "../../../src/core/plan";
import { type DatasetRow, type FedwardDb, openDb, type Split } from "../../../src/store/db";
import { importCsv } from "../../../workers/import/csv";
import type { ImportOptions } from "../../../workers/import/parser";
import { importDataset } from "../../../workers/import/shard-writer";
import { groupsByPatient } from "../../../workers/import/units";

export function demoPlan(): Plan {
  const url = new URL("../../../public/demo/wdbc-plan.json", import.meta.url);
  return parsePlan(JSON.parse(readFileSync(url, "utf8")));
}

export function demoCsv(): string {
  return readFileSync(new URL("../../../public/demo/wdbc-site1.csv", import.meta.url), "utf8");
}

/** Two features with means and stds other than 0 and 1, so a missing normalisation step shows. */
export function smallPlan(holdoutFraction = 0.2): Plan {
  const plan = demoPlan();
  return {
    ...plan,
    features: [
      { name: "age", column: "age", type: "number", mean: 50, std: 10 },
      { name: "bmi", column: "bmi", type: "number", mean: 25, std: 5 },
    ],
    label: { column: "outcome", positive: "yes", negative: "no" },
    evaluation: { holdoutFraction },
  };
}

let dbCount = 0;
/** A database of its own per test, so no test sees another's rows. */
export function freshDb(): FedwardDb {
  dbCount++;
  return openDb(`import-test-${dbCount}-${Date.now()}`);
}

/** What the worker does, minus comlink: parse the CSV and store it for `federationId`. */
export function importText(
  db: FedwardDb,
  source: Blob | string,
  plan: Plan,
  options: ImportOptions & { chunkSize?: number; federationId?: string } = {},
): Promise<DatasetRow> {
  const meta = {
    federationId: options.federationId ?? "fed-a",
    planHash: "hash-of-plan",
    fileName: options.fileName ?? "site.csv",
    numFeatures: inputWidth(plan),
    holdoutFraction: plan.evaluation.holdoutFraction,
    units: groupsByPatient(plan),
  };
  return importDataset(db, meta, (sink) =>
    importCsv(source, plan, sink, { fileName: meta.fileName, ...options }),
  );
}

/** A split's stored examples concatenated in index order. */
export async function storedSplit(db: FedwardDb, datasetId: string, split: Split) {
  const shards = await db.shards
    .where("[datasetId+split+index]")
    .between([datasetId, split, 0], [datasetId, split, Infinity])
    .toArray();
  const x = shards.flatMap((s) => Array.from(s.x));
  const y = shards.flatMap((s) => Array.from(s.y));
  return { x, y, indexes: shards.map((s) => s.index), counts: shards.map((s) => s.count) };
}

/** Every stored row of every table, as text, to search for values that must never be stored. */
export async function everythingStored(db: FedwardDb): Promise<string> {
  const tables = await Promise.all(db.tables.map((t) => t.toArray()));
  return JSON.stringify(tables, (_key, value) =>
    ArrayBuffer.isView(value) ? Array.from(value as Float32Array) : value,
  );
}

/**
 * The browser's FileReader, for Node: papaparse reads Blobs slice by slice through it in the worker.
 * Async like the real one, so pause/resume across slices is exercised.
 */
export class FakeFileReader {
  static reads = 0;
  onload: ((event: { target: { result: string } }) => void) | null = null;
  onerror: (() => void) | null = null;
  error: Error | null = null;
  readAsText(blob: Blob): void {
    FakeFileReader.reads++;
    blob.text().then(
      (result) => this.onload?.({ target: { result } }),
      (error: Error) => {
        this.error = error;
        this.onerror?.();
      },
    );
  }
}
