/**
 * Speed of readNdjson on the Synthea bulk Observation file (19,800 lines, 1.0 MiB gzipped, 16 MiB of JSON),
 * as medians of 5 runs after a warm-up. Rates are given per MiB of the file as stored (what the progress
 * bar counts) and per MiB of JSON read, next to JSON.parse alone on the same lines: the floor no streaming
 * reader can beat. Run with `npx tsx test/bench/fhir-read.ts`.
 */
import { existsSync, openAsBlob, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { readNdjson } from "../../workers/import/fhir-read";
import { timeMs } from "./timing";

const PATH = fileURLToPath(
  new URL("../../../shared/data/fhir/synthea-r4-bulk/Observation.000.ndjson.gz", import.meta.url),
);
const RUNS = 5;
const MiB = 1 << 20;

async function count(file: Blob): Promise<number> {
  let n = 0;
  for await (const _resource of readNdjson(file, (p) => console.error(p.message))) n++;
  return n;
}

function report(what: string, ms: number, storedBytes: number, jsonBytes: number) {
  const stored = storedBytes / MiB / (ms / 1000);
  const json = jsonBytes / MiB / (ms / 1000);
  console.log(
    `bench fhir ${what}: median ${ms.toFixed(0)} ms, ${stored.toFixed(1)} MiB/s as stored, ${json.toFixed(1)} MiB/s of JSON`,
  );
}

if (!existsSync(PATH)) {
  console.log(`bench fhir: skipped, ${PATH} is absent (the shared data folder is not checked out).`);
} else {
  const gz = new Uint8Array(readFileSync(PATH));
  const plain = new Uint8Array(gunzipSync(gz));
  const lines = new TextDecoder().decode(plain).split("\n");
  const expected = lines.filter((line) => line.trim() !== "").length;

  const inMemory = new File([gz], "Observation.000.ndjson.gz");
  // A Blob backed by the file on disk streams in chunks, as a browser File does; an in-memory one in one.
  const onDisk = await openAsBlob(PATH);
  const plainFile = new File([plain], "Observation.000.ndjson");
  for (const file of [inMemory, onDisk, plainFile]) {
    const n = await count(file);
    if (n !== expected) throw new Error(`read ${n} resources, expected ${expected}`);
  }

  report(
    "readNdjson .ndjson.gz in memory",
    await timeMs(RUNS, () => count(inMemory)),
    gz.length,
    plain.length,
  );
  report("readNdjson .ndjson.gz on disk", await timeMs(RUNS, () => count(onDisk)), gz.length, plain.length);
  report(
    "readNdjson .ndjson in memory",
    await timeMs(RUNS, () => count(plainFile)),
    plain.length,
    plain.length,
  );
  const parseOnly = await timeMs(RUNS, async () => {
    for (const line of lines) if (line !== "") JSON.parse(line);
  });
  report("JSON.parse alone (floor)", parseOnly, plain.length, plain.length);
}
