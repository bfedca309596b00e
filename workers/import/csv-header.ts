import { csvColumn, type Plan } from "../../src/core/plan";
import { ImportError, quote } from "./parser";

const DELIMITERS = [",", ";", "\t", "|"];

export interface ColumnMap {
  /** Cell index of each plan feature, in plan order. */
  features: number[];
  label: number;
}

/**
 * Validates the header before any row is read: every plan column present exactly once. Extra columns
 * are allowed and never mapped.
 */
export function mapHeader(header: string[], plan: Plan, fileName: string): ColumnMap {
  const names = header.map((name, i) => (i === 0 ? name.replace(/^\uFEFF/, "") : name).trim());
  const wanted = [...plan.features.map(csvColumn), csvColumn(plan.label)];
  const missing = wanted.filter((column) => !names.includes(column));
  if (missing.length > 0) {
    throw new ImportError(
      `${fileName} is missing the column${missing.length > 1 ? "s" : ""} ${list(missing)} that the plan needs. ` +
        `Columns found: ${list(names)}. Names must match exactly, including case: rename the columns ` +
        "or choose the file exported for this plan.",
    );
  }
  const repeated = wanted.filter((column) => names.indexOf(column) !== names.lastIndexOf(column));
  if (repeated.length > 0) {
    throw new ImportError(
      `${fileName} has the column${repeated.length > 1 ? "s" : ""} ${list(repeated)} more than once, ` +
        "so it is unclear which to use. Remove or rename the copies.",
    );
  }
  return {
    features: plan.features.map((f) => names.indexOf(csvColumn(f))),
    label: names.indexOf(csvColumn(plan.label)),
  };
}

/**
 * Chooses the delimiter that finds the most plan columns in the first line, so a semicolon CSV (Excel in
 * many European locales) imports too. Papaparse's own guess compares field counts over ten rows, which
 * blank lines and tiny files throw off.
 */
export function pickDelimiter(plan: Plan): (firstChunk: string) => string {
  const listed = plan.csv?.columns;
  const wanted = new Set(listed ?? [...plan.features.map(csvColumn), csvColumn(plan.label)]);
  return (firstChunk) => {
    const lines = firstChunk.split(/\r\n|\r|\n/).slice(plan.csv?.skipLines ?? 0);
    const firstLine = lines.find((line) => line.trim() !== "") ?? "";
    // A headerless file: the delimiter that splits the first row into as many cells as the plan lists.
    if (listed) {
      const fits = DELIMITERS.find((d) => firstLine.split(d).length === listed.length);
      if (fits !== undefined) return fits;
    }
    let best = ",";
    let bestHits = 0;
    for (const delimiter of DELIMITERS) {
      const cells = firstLine.split(delimiter).map((cell) => cell.trim().replace(/^\uFEFF?"?|"$/g, ""));
      const hits = cells.filter((cell) => wanted.has(cell)).length;
      if (hits > bestHits) [best, bestHits] = [delimiter, hits];
    }
    return best;
  };
}

function list(names: string[]): string {
  const shown = names.slice(0, 40).map(quote).join(", ");
  return names.length > 40 ? `${shown} and ${names.length - 40} more` : shown;
}
