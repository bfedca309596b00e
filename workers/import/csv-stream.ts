import Papa from "papaparse";
import { ImportError } from "./parser";

export interface CsvBatch {
  /** Raw records in file order, blank ones included, so the caller can count lines. */
  rows: string[][];
  /** Index in `rows` -> papaparse's complaint (unbalanced quotes). */
  badRows: Map<number, string>;
  /** Share of the source consumed so far, 0..1. */
  fraction: number;
}

export interface CsvStreamOptions {
  fileName: string;
  /** Characters (string) or bytes (Blob) per read; the header line must fit in the first one. */
  chunkSize: number;
  delimiter: (firstChunk: string) => string;
  signal?: AbortSignal | undefined;
}

/**
 * Streams a CSV in chunks and waits for `onBatch` before reading on, so IndexedDB writes keep pace with
 * parsing and a large file never sits in memory whole. Blobs are read through FileReader (present in
 * workers); where it is absent (Node, in unit tests) the Blob is read as text first.
 * Known limit: papaparse decodes each byte slice on its own, so a multi-byte character cut by a slice
 * boundary becomes U+FFFD; numbers are ASCII, so at worst a label cell is reported as a problem.
 */
export async function streamCsv(
  source: Blob | string,
  options: CsvStreamOptions,
  onBatch: (batch: CsvBatch) => Promise<void>,
): Promise<void> {
  const input =
    typeof source === "string" || typeof FileReader !== "undefined" ? source : await source.text();
  const units = typeof input === "string" ? input.length : input.size;
  let chunks = 0;
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (error: unknown, parser?: Papa.Parser) => {
      failed = true;
      parser?.abort();
      reject(error);
    };
    Papa.parse<string[]>(input as File, {
      header: false,
      // Blank lines are skipped by the caller, not here: papaparse would drop them and the line count with them.
      skipEmptyLines: false,
      worker: false,
      chunkSize: options.chunkSize,
      delimiter: options.delimiter,
      chunk(results, parser) {
        parser.pause();
        chunks++;
        const batch = {
          rows: results.data,
          badRows: badRows(results),
          fraction: units === 0 ? 1 : Math.min(1, (chunks * options.chunkSize) / units),
        };
        Promise.resolve()
          .then(() => options.signal?.throwIfAborted())
          .then(() => onBatch(batch))
          .then(
            () => parser.resume(),
            (error: unknown) => fail(error, parser),
          );
      },
      complete() {
        if (!failed) resolve();
      },
      error(error) {
        fail(
          new ImportError(
            `Could not read ${options.fileName}: ${error.message}. Check that the file is still there and readable, then choose it again.`,
          ),
        );
      },
    });
  });
}

/** Papaparse repeats errors of a half-read record on later chunks; only those pointing into `data` belong here. */
function badRows(results: Papa.ParseResult<string[]>): Map<number, string> {
  const bad = new Map<number, string>();
  for (const error of results.errors) {
    if (error.type === "Quotes" && error.row !== undefined && error.row < results.data.length) {
      bad.set(error.row, error.message);
    }
  }
  return bad;
}
