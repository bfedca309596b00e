/**
 * Speed of importCohort (both passes) on the Synthea bulk export (200 patients, 16 NDJSON files), as the
 * median of 3 runs after a warm-up, next to readFhirFile alone on the same files (the parse floor), and
 * the bytes per patient of the one in-memory structure that grows with patients (PatientKeys).
 * IndexedDB is fake-indexeddb in Node here: the browser's own IndexedDB writes at another speed.
 * Run with `npx tsx --expose-gc test/bench/cohort-import.ts`.
 */
import "fake-indexeddb/auto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { patientRef } from "../../src/core/cohort/fhir";
import { parseCohortSpec } from "../../src/core/cohort/spec";
import { openDb } from "../../src/store/db";
import { importCohort } from "../../workers/import/cohort-import";
import { readFhirFile } from "../../workers/import/fhir-read";
import { PatientKeys } from "../../workers/import/staging";
import { hypertension } from "../support/cohort-specs";
import { timeMs } from "./timing";

const DIR = fileURLToPath(new URL("../../../shared/data/fhir/synthea-r4-bulk", import.meta.url));
const RUNS = 3;
const MiB = 1 << 20;

/** The Synthea hypertension spec, indexed at each patient's first encounter so encounters are staged too. */
const spec = parseCohortSpec({
  ...hypertension,
  indexDate: { kind: "first-encounter", onOrAfter: "2012-01-01" },
});

/**
 * Heap kept by PatientKeys per patient, refs made the way the import makes them (parsed JSON through
 * patientRef), measured after the parsed resources are gone: what the map alone keeps alive.
 */
function mapBytesPerPatient(n: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const keys = new PatientKeys();
  for (let i = 0; i < n; i++) {
    const r = JSON.parse(
      `{"resourceType":"Observation","subject":{"reference":"Patient/${crypto.randomUUID()}"}}`,
    );
    keys.keyOf(patientRef(r) as string);
  }
  gc?.();
  const after = process.memoryUsage().heapUsed;
  if (keys.size !== n) throw new Error("keys lost");
  return (after - before) / n;
}

async function main() {
  if (!existsSync(DIR)) {
    console.warn(`cohort-import bench skipped: ${DIR} absent`);
    return;
  }
  const names = readdirSync(DIR).filter((f) => f.endsWith(".ndjson.gz"));
  const stored = names.map((f) => readFileSync(`${DIR}/${f}`));
  const files = stored.map((bytes, i) => new File([bytes], names[i] as string));
  const compressed = stored.reduce((s, b) => s + b.byteLength, 0);
  const json = stored.reduce((s, b) => s + gunzipSync(b).byteLength, 0);
  let resources = 0;
  let patients = 0;
  let db = openDb(`bench-${Date.now()}`);
  const importMs = await timeMs(RUNS, async () => {
    db = openDb(`bench-${Date.now()}-${Math.random()}`);
    const result = await importCohort(files, spec, db, () => undefined);
    resources = result.files.reduce((s, f) => s + f.resources, 0);
    patients = result.patients;
  });
  const readMs = await timeMs(RUNS, async () => {
    for (const f of files) for await (const _ of readFhirFile(f, () => undefined)) void _;
  });
  const rate = (ms: number) =>
    `${(compressed / MiB / (ms / 1000)).toFixed(2)} MiB/s stored, ${(json / MiB / (ms / 1000)).toFixed(1)} MiB/s of JSON, ` +
    `${Math.round(resources / (ms / 1000)).toLocaleString("en")} resources/s`;
  console.log("IndexedDB is fake-indexeddb (Node); browser numbers differ.");
  console.log(
    `Synthea bulk: ${names.length} files, ${(compressed / MiB).toFixed(2)} MiB stored, ${(json / MiB).toFixed(1)} MiB of JSON, ` +
      `${resources.toLocaleString("en")} resources, ${patients} patients`,
  );
  console.log(`importCohort (both passes): ${importMs.toFixed(0)} ms; ${rate(importMs)}`);
  console.log(`readFhirFile alone:         ${readMs.toFixed(0)} ms; ${rate(readMs)}`);
  const gcNote = (globalThis as { gc?: unknown }).gc === undefined ? " (no --expose-gc: rough)" : "";
  for (const n of [10_000, 200_000])
    console.log(
      `PatientKeys: ${mapBytesPerPatient(n).toFixed(0)} bytes per patient at ${n.toLocaleString("en")} patients${gcNote}`,
    );
}

await main();
