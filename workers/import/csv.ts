import { describeValue, encodeFeatures, type RawValue } from "../../src/core/features";
import { csvColumn, type Plan } from "../../src/core/plan";
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
import { type UnitKey, unitHoldoutKey, unitKey } from "./units";

/** 1 MiB reads: few enough round trips, small enough that memory stays flat for any file size. */
const CHUNK_SIZE = 1 << 20;
/** Number() reads these as numbers too; a data file never means them. */
const RADIX_PREFIX = /^[+-]?0[xXbBoO]/;
/** The same with a decimal comma (no dot, at most one comma). */
const DECIMAL_COMMA = /^[+-]?(?:\d+,?\d*|,\d+)(?:[eE][+-]?\d+)?$/;
const LINE_BREAK = /\r\n|\r|\n/g;

/**
 * Reads a CSV whose header names the plan's feature and label columns (or, for a headerless file, whose
 * columns the plan lists in `csv.columns`) and feeds the sink normalised examples. Other columns are never
 * read past the header, so identifiers in them go nowhere. `csv.skipLines` lines are skipped first.
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
  if (plan.cohort) {
    throw new ImportError(
      `${fileName} is a CSV file, but this plan reads FHIR or OMOP exports of patient records. ` +
        "Choose the export the federation asked for.",
    );
  }
  const totalBytes = typeof source === "string" ? source.length : source.size;
  const listed = plan.csv?.columns;
  let columns: ColumnMap | undefined;
  let patient: number | undefined;
  let decimal: Decimal | undefined;
  let toSkip = plan.csv?.skipLines ?? 0;
  const problems: ImportProblem[] = [];
  let nextLine = 1;
  const stats: ParseStats = { rowsRead: 0, rowsSkipped: 0, imputed: {} };
  const scratch: RawValue[] = new Array(plan.features.length);

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
      if (line === 1 && row.length > 0) row[0] = (row[0] as string).replace(/^\uFEFF/, "");
      if (toSkip > 0) {
        toSkip--;
        continue;
      }
      if (row.every((cell) => cell.trim() === "")) continue;
      if (columns === undefined) {
        columns = listed ? mapHeader(listed, plan, `the plan's csv.columns`) : mapHeader(row, plan, fileName);
        patient = patientCell(listed ?? row, plan, listed ? `the plan's csv.columns` : fileName);
        // A listed file may still carry its header row: then it is not data.
        if (!listed || isHeader(row, listed)) continue;
      }
      decimal ??= decideDecimal(plan, row, columns);
      stats.rowsRead++;
      problems.length = 0;
      const quoteError = badRows.get(i);
      // Broken quotes shift cells between columns, so none of the row's cells can be trusted.
      if (quoteError !== undefined) {
        problems.push({
          line,
          column: "(whole row)",
          message: `${quoteError}; check the quotes on this line`,
        });
      }
      const example =
        quoteError === undefined
          ? readExample(row, columns, plan, decimal, line, problems, scratch)
          : undefined;
      const unit =
        patient === undefined || quoteError !== undefined
          ? undefined
          : patientOf(row, patient, plan, line, problems);
      if (example === undefined || (patient !== undefined && unit === undefined)) {
        stats.rowsSkipped++;
        for (const problem of problems) sink.problem(problem);
        continue;
      }
      for (const f of example.imputed) {
        const name = plan.features[f]?.name as string;
        stats.imputed[name] = (stats.imputed[name] ?? 0) + 1;
      }
      // A patient's rows share a unit and, through its key, a side of the holdout split.
      if (unit === undefined) await sink.add(example.x, example.y, line);
      else await sink.add(example.x, example.y, unitHoldoutKey(unit), unit);
    }
    options.onProgress?.(Math.round(fraction * totalBytes), totalBytes, stats.rowsRead);
  });

  if (columns === undefined) {
    throw new ImportError(`${fileName} is empty. Choose the CSV file exported for this plan.`);
  }
  return stats;
}

/** The cell index of csv.patientColumn in the header (or the plan's column list), if the plan names one. */
function patientCell(header: string[], plan: Plan, where: string): number | undefined {
  const column = plan.csv?.patientColumn;
  if (column === undefined) return undefined;
  const names = header.map((name, i) => (i === 0 ? name.replace(/^\uFEFF/, "") : name).trim());
  const at = names.indexOf(column);
  if (at < 0 || names.lastIndexOf(column) !== at) {
    throw new ImportError(
      `${where} ${at < 0 ? "is missing the column" : "has more than once the column"} ${quote(column)} that ` +
        "the plan's csv.patientColumn names: it tells which rows belong to one patient. Rename the column " +
        "or choose the file exported for this plan.",
    );
  }
  return at;
}

/**
 * The hashed patient of a row; the value itself goes no further than this function (never into a problem,
 * a shard or the dataset row). A row without one is skipped: it could be any patient's.
 */
function patientOf(
  row: string[],
  cell: number,
  plan: Plan,
  line: number,
  problems: ImportProblem[],
): UnitKey | undefined {
  const value = (row[cell] ?? "").trim();
  if (value !== "") return unitKey(value);
  problems.push({
    line,
    column: plan.csv?.patientColumn ?? "",
    message: "missing value (the plan's csv.patientColumn: whose row this is)",
  });
  return undefined;
}

/** Decimal separator of one file: fixed by the plan, or decided by the file's first data row. */
type Decimal = "." | ",";

function readExample(
  row: string[],
  columns: ColumnMap,
  plan: Plan,
  decimal: Decimal,
  line: number,
  problems: ImportProblem[],
  values: RawValue[],
): { x: Float32Array; y: 0 | 1; imputed: readonly number[] } | undefined {
  // `values` is the import's scratch array, refilled per row: no allocation per row on the hot path.
  const { features } = plan;
  for (let f = 0; f < features.length; f++) {
    const feature = features[f] as Plan["features"][number];
    const cell = (row[columns.features[f] as number] ?? "").trim();
    if (cell === "") values[f] = undefined;
    else if (feature.type === "category") values[f] = cell;
    else {
      const value = parseNumber(cell, decimal);
      if (value === undefined) {
        problems.push({ line, column: csvColumn(feature), message: `not a number (${describeValue(cell)})` });
      }
      values[f] = value ?? Number.NaN;
    }
  }
  const encoded = problems.length === 0 ? encodeFeatures(plan, values) : undefined;
  if (Array.isArray(encoded)) {
    for (const { feature, message } of encoded) {
      problems.push({ line, column: csvColumn(plan.features[feature] ?? {}), message });
    }
  }
  const label = (row[columns.label] ?? "").trim();
  const y = label === plan.label.positive ? 1 : label === plan.label.negative ? 0 : undefined;
  if (y === undefined) {
    const expected = `expected ${quote(plan.label.positive)} or ${quote(plan.label.negative)}`;
    const message =
      label === "" ? `missing value (${expected})` : `not a class (${describeValue(label)}): ${expected}`;
    problems.push({ line, column: csvColumn(plan.label), message });
  }
  if (encoded === undefined || Array.isArray(encoded) || y === undefined) return undefined;
  return { x: encoded.x, y, imputed: encoded.imputed };
}

/** A decimal number in the file's convention, or undefined. */
function parseNumber(cell: string, decimal: Decimal): number | undefined {
  const text = decimal === "," ? (DECIMAL_COMMA.test(cell) ? cell.replace(",", ".") : undefined) : cell;
  if (text === undefined) return undefined;
  const value = Number(text);
  // Number() also reads "0x1f", "0b1" and "0o7" (and "Infinity", which is not finite): refuse those.
  if (!Number.isFinite(value) || RADIX_PREFIX.test(text)) return undefined;
  return value;
}

/**
 * "auto": a file whose first data row writes a number feature as 1,5 (and none as 1.5) uses the decimal
 * comma throughout, as spreadsheets in many European locales export; otherwise the dot.
 */
function decideDecimal(plan: Plan, row: string[], columns: ColumnMap): Decimal {
  const setting = plan.csv?.decimal ?? "auto";
  if (setting !== "auto") return setting;
  let comma = false;
  let dot = false;
  plan.features.forEach((feature, f) => {
    if (feature.type !== "number") return;
    const cell = (row[columns.features[f] as number] ?? "").trim();
    if (DECIMAL_COMMA.test(cell) && cell.includes(",")) comma = true;
    else if (cell.includes(".")) dot = true;
  });
  return comma && !dot ? "," : ".";
}

function isHeader(row: string[], listed: string[]): boolean {
  return row.length === listed.length && row.every((cell, i) => cell.trim() === listed[i]);
}

/** Line breaks inside quoted cells: a record that spans lines moves the next record's line number on. */
function lineBreaks(row: string[]): number {
  let count = 0;
  for (const cell of row) {
    if (cell.includes("\n") || cell.includes("\r")) count += cell.match(LINE_BREAK)?.length ?? 0;
  }
  return count;
}
