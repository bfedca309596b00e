import type { RawValue } from "../features";
import { type CodeMatcher, codeMatcher } from "./codes";
import type { ObservationFact, Quantity } from "./facts";
import type { History } from "./history";
import { type Problems, showUnit } from "./problems";
import type { CohortFeature, Derived } from "./spec";
import { DAY_MS, wholeYears } from "./time";
import { convertUnit } from "./ucum";

/**
 * Computes one feature's raw value from a patient's History (facts strictly before the index). Numbers
 * for numeric sources, a level string for sex and coded observations, undefined when missing; the values
 * feed src/core/features.ts `encodeFeatures`, which applies the plan's missing-value rule.
 */
export function deriveFeature(feature: CohortFeature, history: History, problems: Problems): RawValue {
  const from = feature.from;
  switch (from.kind) {
    case "age":
      return ageAtIndex(history);
    case "sex":
      return SEX_LEVELS.has(history.patient.gender ?? "") ? history.patient.gender : undefined;
    case "observation":
      return observationStat(feature.name, from, history, problems);
    case "observation-code":
      return latestConcept(from, history);
    case "condition":
      return inWindow(history.conditions, from.windowDays, history.index).some((c) =>
        codeMatcher(from.codes)(c.codes),
      )
        ? 1
        : 0;
  }
}

// Patient.gender's value set (administrative-gender).
const SEX_LEVELS = new Set(["female", "male", "other", "unknown"]);

/**
 * Whole years at the index. A partial birthDate ("1970" or "1970-05") is read as its first day, the
 * earliest birth it allows: a year-only date then gives the oldest age it allows, off by at most one year.
 */
function ageAtIndex(history: History): number | undefined {
  const birth = history.patient.birth;
  return birth === undefined ? undefined : wholeYears(birth.start, history.index);
}

/** Facts in the look-back window: on or after index − windowDays (inclusive); all when no window. */
function inWindow<T extends { time: { start: number } }>(
  facts: readonly T[],
  windowDays: number | undefined,
  index: number,
): readonly T[] {
  if (windowDays === undefined) return facts;
  const from = index - windowDays * DAY_MS;
  return facts.filter((f) => f.time.start >= from);
}

/**
 * The quantities a matching observation contributes: its own value when its code matches, else the value
 * of each matching component (a blood pressure panel holds systolic and diastolic as components).
 * Undefined when the observation does not match at all; [undefined] when it matches without a number.
 */
export function matchingQuantities(
  obs: ObservationFact,
  match: CodeMatcher,
): (Quantity | undefined)[] | undefined {
  if (match(obs.codes)) return [obs.quantity];
  const parts = obs.components.filter((c) => match(c.codes));
  return parts.length > 0 ? parts.map((c) => c.quantity) : undefined;
}

/** A quantity in the wanted unit (as is without one), or undefined with a counted problem. */
export function quantityIn(
  q: Quantity,
  unit: string | undefined,
  what: string,
  problems: Problems,
): number | undefined {
  if (unit === undefined) return q.value;
  const value = q.unit === undefined ? undefined : convertUnit(q.value, q.unit, unit);
  if (value === undefined)
    problems.add(`${what}: Observation value in ${showUnit(q.unit)} not convertible to '${unit}'`);
  return value;
}

type ObservationSource = Extract<Derived, { kind: "observation" }>;

function observationStat(
  name: string,
  from: ObservationSource,
  history: History,
  problems: Problems,
): RawValue {
  const match = codeMatcher(from.codes);
  const values: number[] = [];
  let count = 0;
  for (const obs of inWindow(history.observations, from.windowDays, history.index)) {
    const quantities = matchingQuantities(obs, match);
    if (quantities === undefined) continue;
    count += 1;
    if (from.stat === "count") continue;
    for (const q of quantities) {
      if (q === undefined) problems.add(`${name}: a matching Observation has no numeric value`);
      else {
        const v = quantityIn(q, from.unit, name, problems);
        if (v !== undefined) values.push(v);
      }
    }
  }
  if (from.stat === "count") return count;
  if (values.length === 0) return undefined;
  // Observations are in time order, so the last value is the latest.
  if (from.stat === "latest") return values[values.length - 1];
  // A loop rather than Math.min(...values): a long history would overflow the argument list.
  if (from.stat === "min") return values.reduce((a, b) => (b < a ? b : a));
  if (from.stat === "max") return values.reduce((a, b) => (b > a ? b : a));
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** The code of the latest matching observation that has a coded value, e.g. smoking status. */
function latestConcept(from: Extract<Derived, { kind: "observation-code" }>, history: History): RawValue {
  const match = codeMatcher(from.codes);
  const facts = inWindow(history.observations, from.windowDays, history.index);
  for (let i = facts.length - 1; i >= 0; i--) {
    const obs = facts[i] as ObservationFact;
    if (obs.concept !== undefined && match(obs.codes)) return obs.concept;
  }
  return undefined;
}
