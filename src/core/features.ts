import { type Feature, featureWidth, inputWidth, type Plan } from "./plan";

/**
 * Turns one example's raw feature values into the model's input vector, the same way for every source
 * format (CSV today; FHIR and OMOP produce the same raw values): numbers are normalised by the plan's mean
 * and std, categories are one-hot over the plan's levels, and missing values follow the plan's rule.
 */

/** A number feature's value, a category feature's level as text, or undefined when missing. */
export type RawValue = number | string | undefined;

export interface EncodeProblem {
  /** Index of the feature in the plan. */
  feature: number;
  message: string;
}

export interface Encoded {
  x: Float32Array;
  /** Indices of the features whose missing value was imputed by the plan's rule. */
  imputed: readonly number[];
}

/** Shared by every example without imputations: no array per row on the import's hot path. */
const NONE: readonly number[] = Object.freeze([]);

/**
 * Encodes one example, or returns its problems when the plan says to leave it out. A problem never quotes
 * the value: a column that slipped could put a name or MRN there, and problems are stored and shown.
 */
export function encodeFeatures(plan: Plan, values: readonly RawValue[]): Encoded | EncodeProblem[] {
  const x = new Float32Array(inputWidth(plan));
  let imputed: number[] | undefined;
  let problems: EncodeProblem[] | undefined;
  let offset = 0;
  const { features } = plan;
  for (let f = 0; f < features.length; f++) {
    const feature = features[f] as Feature;
    const problem = encodeOne(feature, values[f], x, offset);
    if (problem === "imputed") {
      imputed ??= [];
      imputed.push(f);
    } else if (problem !== undefined) {
      problems ??= [];
      problems.push({ feature: f, message: problem });
    }
    offset += featureWidth(feature);
  }
  return problems ?? { x, imputed: imputed ?? NONE };
}

/** Writes one feature at `offset`; returns a problem, "imputed", or undefined when the value was used. */
function encodeOne(feature: Feature, value: RawValue, x: Float32Array, offset: number): string | undefined {
  if (value === undefined) {
    const rule = feature.missing ?? "skip";
    if (rule === "skip") return "missing value";
    // "mean" is 0 after normalisation, "zeros" is an all-zero one-hot: both leave x as it is.
    if (rule === "zero" && feature.type === "number") x[offset] = (0 - feature.mean) / feature.std;
    return "imputed";
  }
  if (feature.type === "number") {
    if (typeof value !== "number" || !Number.isFinite(value)) return "not a finite number";
    x[offset] = (value - feature.mean) / feature.std;
    return undefined;
  }
  const level = feature.levels.indexOf(String(value));
  if (level < 0) {
    const shown = feature.levels
      .slice(0, 8)
      .map((l) => JSON.stringify(l))
      .join(", ");
    const more = feature.levels.length > 8 ? ` and ${feature.levels.length - 8} more` : "";
    return `not one of the plan's levels ${shown}${more} (${describeValue(String(value))})`;
  }
  x[offset + level] = 1;
  return undefined;
}

/** What a value looks like, without the value: enough to find it in the file by line and column. */
export function describeValue(cell: string): string {
  const kind = /^[0-9\s.,:/+-]*$/.test(cell) ? "digits and punctuation" : "text";
  return `${kind}, ${cell.length} character${cell.length === 1 ? "" : "s"}`;
}
