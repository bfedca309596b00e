import type { RawValue } from "../features";
import { codeMatcher } from "./codes";
import { deriveFeature } from "./derive";
import { type Facts, historyBefore } from "./history";
import { deriveLabel } from "./label";
import type { Problems } from "./problems";
import type { CohortSpec, IndexDate } from "./spec";
import { dayStart } from "./time";

/**
 * From one patient's facts (read from FHIR by fhir.ts or from OMOP by omop.ts) to one example or one
 * exclusion. No FHIR code here, so an OMOP import does not load fhirpath.
 *
 * Order of work, which is what keeps the future out of the features: find the index instant, cut the facts
 * to a History strictly before it, compute every feature from that History alone, and only then look after
 * the index for the label.
 */
export type CohortOutcome =
  | { kind: "example"; values: RawValue[]; label: 0 | 1; problems: string[] }
  | { kind: "excluded"; reason: string };

export function outcomeFromFacts(spec: CohortSpec, facts: Facts, problems: Problems): CohortOutcome {
  const index = indexInstant(spec.indexDate, facts);
  if (typeof index === "string") return { kind: "excluded", reason: index };
  const unfit = outsideIndex(facts, index);
  if (unfit !== undefined) return { kind: "excluded", reason: unfit };
  const history = historyBefore(facts, index);
  const values = spec.features.map((feature) => deriveFeature(feature, history, problems));
  const label = deriveLabel(spec.label, facts, index, problems);
  if (typeof label === "object") return { kind: "excluded", reason: label.excluded };
  return { kind: "example", values, label, problems: problems.list() };
}

/** The index instant in UTC milliseconds, or why the patient has none. */
function indexInstant(indexDate: IndexDate, facts: Facts): number | string {
  if (indexDate.kind === "fixed") return dayStart(indexDate.date);
  const from = indexDate.onOrAfter === undefined ? -Infinity : dayStart(indexDate.onOrAfter);
  const match = indexDate.codes === undefined ? () => true : codeMatcher(indexDate.codes);
  // Encounters are in start order, so the first that qualifies is the earliest.
  const first = facts.encounters.find((e) => e.time.start >= from && match(e.codes));
  return first === undefined ? "no qualifying encounter for the index date" : first.time.start;
}

/** Why a patient cannot be followed from the index: not yet born, or already dead. */
function outsideIndex(facts: Facts, index: number): string | undefined {
  const { birth, death } = facts.patient;
  if (birth !== undefined && birth.start > index) return "born after the index date";
  if (death !== undefined && death.end <= index) return "died before the index date";
  return undefined;
}
