import type { Plan } from "../../src/core/plan";
import type { ImportProblem } from "../../src/store/db";
import { type ColumnMap, mapHeader, pickDelimiter } from "./csv-header";
import { streamCsv } from "./csv-stream";
import {
  type ExampleSink,
  ImportError,
  type ImportOptions,
  type ParseStats,
  quote,
  sourceName,
} from "./parser";

/** 1 MiB reads: few enough round trips, small enough that memory stays flat for any file size. */
const CHUNK_SIZE = 1 << 20;
/** A decimal number; Number() alone would also take "0x1f", "Infinity" and "" as numbers. */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const LINE_BREAK = /\r\n|\r|\n/g;

/**
 * Reads a CSV whose header names the plan's feature and label columns and feeds the sink normalised
 * examples. Other columns are never read past the header, so identifiers in them go nowhere.
 * Fatal problems (missing columns, unreadable or empty file) throw ImportError; bad rows are reported
 * through `sink.problem` with their line and column, and skipped.
 */
export async function importCsv(
  source: Blob | string,
  plan: Plan,
  sink: ExampleSink,
  options: ImportOptions & { chunkSize?: number } = {},
): Promise<ParseStats> {
  const fileName = sourceName(source, options.fileName);
  const totalBytes = typeof source === "string" ? source.length : source.size;
  let columns: ColumnMap | undefined;
  let nextLine = 1;
  const stats: ParseStats = { rowsRead: 0, rowsSkipped: 0 };

  const streamOptions = {
    fileName,
    chunkSize: options.chunkSize ?? CHUNK_SIZE,
    delimiter: pickDelimiter(plan),
    signal: options.signal,
  };
  await streamCsv(source, streamOptions, async ({ rows, badRows, fraction }) => {
    for (const [i, row] of rows.entries()) {
      const line = nextLine;
      nextLine += 1 + lineBreaks(row);
      if (row.every((cell) => cell.trim() === "")) continue;
      if (columns === undefined) {
        columns = mapHeader(row, plan, fileName);
        continue;
      }
      stats.rowsRead++;
      const problems: ImportProblem[] = [];
      const quoteError = badRows.get(i);
      // Broken quotes shift cells between columns, so none of the row's cells can be trusted.
      if (quoteError !== undefined) {
        problems.push({
          line,
          column: "(whole row)",
          message: `${quoteError}; check the quotes on this line`,
        });
      }
      const example = quoteError === undefined ? readExample(row, columns, plan, line, problems) : undefined;
      if (example === undefined) {
        stats.rowsSkipped++;
        for (const problem of problems) sink.problem(problem);
        continue;
      }
      await sink.add(example.x, example.y, line);
    }
    options.onProgress?.(Math.round(fraction * totalBytes), totalBytes, stats.rowsRead);
  });

  if (columns === undefined) {
    throw new ImportError(`${fileName} is empty. Choose the CSV file exported for this plan.`);
  }
  return stats;
}

function readExample(
  row: string[],
  columns: ColumnMap,
  plan: Plan,
  line: number,
  problems: ImportProblem[],
): { x: Float32Array; y: 0 | 1 } | undefined {
  const x = new Float32Array(plan.features.length);
  plan.features.forEach((feature, f) => {
    const cell = (row[columns.features[f] as number] ?? "").trim();
    const value = Number(cell);
    if (cell === "") problems.push({ line, column: feature.column, message: "missing value" });
    else if (!NUMBER.test(cell) || !Number.isFinite(value)) {
      problems.push({ line, column: feature.column, message: `not a number (${describeCell(cell)})` });
    } else x[f] = (value - feature.mean) / feature.std;
  });
  const label = (row[columns.label] ?? "").trim();
  const y = label === plan.label.positive ? 1 : label === plan.label.negative ? 0 : undefined;
  if (y === undefined) {
    const expected = `expected ${quote(plan.label.positive)} or ${quote(plan.label.negative)}`;
    const message =
      label === "" ? `missing value (${expected})` : `not a class (${describeCell(label)}): ${expected}`;
    problems.push({ line, column: plan.label.column, message });
  }
  return problems.length === 0 && y !== undefined ? { x, y } : undefined;
}

/** Line breaks inside quoted cells: a record that spans lines moves the next record's line number on. */
function lineBreaks(row: string[]): number {
  let count = 0;
  for (const cell of row) {
    if (cell.includes("\n") || cell.includes("\r")) count += cell.match(LINE_BREAK)?.length ?? 0;
  }
  return count;
}

/**
 * Problems are kept in IndexedDB and shown on screen, so they never quote the cell: a row whose columns
 * slipped (an unquoted comma in a name or address) would put a name, MRN or date into a feature column.
 * The clinician finds the value in the file by its line and column.
 */
function describeCell(cell: string): string {
  const kind = /^[0-9\s.,:/+-]*$/.test(cell) ? "digits and punctuation" : "text";
  return `${kind}, ${cell.length} character${cell.length === 1 ? "" : "s"}`;
}
