import Papa from "papaparse";
import type { OmopRow } from "../../src/core/cohort/omop";
import { fileBytes, isGzip } from "./file-bytes";

/**
 * Streams one OMOP CDM table (.csv or .csv.gz, gzip told by its magic bytes) as rows of column name to
 * text, as papaparse's header mode gives them. The text is cut only after a line break outside quotes
 * (quote parity: an escaped "" toggles twice), and papaparse parses each such run of whole records, so
 * memory is bounded by the chunk size and the longest record, never by the file.
 */

/** The tables a cohort reads, by their CDM 5.4 names. */
export const OMOP_TABLES = [
  "PERSON",
  "DEATH",
  "MEASUREMENT",
  "OBSERVATION",
  "CONDITION_OCCURRENCE",
  "VISIT_OCCURRENCE",
  "OBSERVATION_PERIOD",
] as const;
export type OmopTable = (typeof OMOP_TABLES)[number];

/** The table a file name names ("measurement.csv.gz", "PERSON.csv"), any CSV otherwise "other". */
export function omopTableOf(name: string): OmopTable | "other" | undefined {
  const m = /(?:^|[\\/])([A-Za-z_]+)\.csv(?:\.gz)?$/i.exec(name);
  if (m === null) return /\.csv(?:\.gz)?$/i.test(name) ? "other" : undefined;
  const table = (m[1] as string).toUpperCase();
  return (OMOP_TABLES as readonly string[]).includes(table) ? (table as OmopTable) : "other";
}

export interface OmopRecord {
  row: OmopRow;
  /** 1-based record number, the header being record 1 (the line number when no cell spans lines). */
  record: number;
}

export interface OmopReadOptions {
  signal?: AbortSignal | undefined;
  onProgress?(bytesRead: number, totalBytes: number): void;
}

export async function* readOmopTable(
  file: Blob,
  onProblem: (record: number | undefined, message: string) => void,
  options: OmopReadOptions = {},
): AsyncGenerator<OmopRecord> {
  const gzip = await isGzip(file);
  const bytes = fileBytes(file, gzip, options.onProgress);
  const reader = bytes.getReader();
  const decoder = new TextDecoder("utf-8");
  let header: string[] | undefined;
  let record = 0;
  let text = "";
  let scanned = 0;
  let quoted = false;
  let boundary = -1;
  const parse = function* (records: string): Generator<OmopRecord> {
    const result = Papa.parse<string[]>(records, { header: false, skipEmptyLines: false });
    const bad = new Set(result.errors.filter((e) => e.type === "Quotes").map((e) => e.row));
    for (const [i, fields] of result.data.entries()) {
      if (fields.length === 1 && fields[0] === "") continue;
      record++;
      if (header === undefined) {
        header = fields.map((f, j) => (j === 0 ? f.replace(/^\uFEFF/, "") : f).trim().toLowerCase());
        continue;
      }
      if (bad.has(i)) {
        onProblem(record, `record ${record} has an unbalanced quote and was skipped.`);
        continue;
      }
      const row: OmopRow = {};
      header.forEach((column, j) => {
        if (j < fields.length) row[column] = fields[j];
      });
      yield { row, record };
    }
  };
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        options.signal?.throwIfAborted();
        const reason = error instanceof Error ? error.message : String(error);
        onProblem(
          record + 1,
          `the ${gzip ? "gzip data is damaged or cut off" : "file could not be read further"} at record ${record + 1} (${reason}); the records before it were read.`,
        );
        return;
      }
      if (next.done) break;
      text += decoder.decode(next.value, { stream: true });
      for (let i = scanned; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 34) quoted = !quoted;
        else if (c === 10 && !quoted) boundary = i;
      }
      scanned = text.length;
      if (boundary >= 0) {
        const records = text.slice(0, boundary + 1);
        text = text.slice(boundary + 1);
        scanned = text.length;
        boundary = -1;
        yield* parse(records);
      }
    }
    text += decoder.decode();
    if (text !== "") yield* parse(text);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
