import type { ConditionFact, EncounterFact, FhirResource, ObservationFact, PatientFact } from "./facts";
import type { Span } from "./time";

/** One patient's resources, already grouped: every resource refers to `patient`. */
export interface PatientResources {
  patient: FhirResource;
  resources: FhirResource[];
}

/** Everything the engine reads from one patient's record, as facts in a fixed order. */
export interface Facts {
  patient: PatientFact;
  observations: ObservationFact[];
  conditions: ConditionFact[];
  encounters: EncounterFact[];
}

/**
 * The part of a record a feature may see: facts whose whole time span lies strictly before the index.
 * Features take a History and nothing else, and only `historyBefore` makes one, so nothing dated on or
 * after the index can reach a feature by construction (the brand stops a hand-built object passing).
 */
export interface History {
  readonly index: number;
  /** Birth date and gender; the date of death is left out, as it may lie after the index. */
  readonly patient: Omit<PatientFact, "death">;
  readonly observations: readonly ObservationFact[];
  readonly conditions: readonly ConditionFact[];
  readonly __history: unique symbol;
}

// Time order, then id: bundles and bulk exports list resources in different orders, and "latest" or a
// floating-point mean must not depend on that.
function byTime(a: { time: Span; id: string }, b: { time: Span; id: string }): number {
  return a.time.start - b.time.start || a.time.end - b.time.end || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Puts facts in the order every feature and label relies on, whatever order the source listed them in. */
export function sortFacts(facts: Facts): Facts {
  facts.observations.sort(byTime);
  facts.conditions.sort(byTime);
  facts.encounters.sort((a, b) => a.time.start - b.time.start);
  return facts;
}

/** The only way to a History: keeps the facts that ended strictly before `index`. */
export function historyBefore(facts: Facts, index: number): History {
  const before = <T extends { time: Span }>(list: T[]) => list.filter((f) => f.time.end <= index);
  return {
    index,
    patient: { birth: facts.patient.birth, gender: facts.patient.gender },
    observations: before(facts.observations),
    conditions: before(facts.conditions),
  } as unknown as History;
}
