import { conditionFact, encounterFact, type FhirResource, patientFact } from "./facts";
import { type Facts, type PatientResources, sortFacts } from "./history";
import { observationFactPlain } from "./observation-plain";
import { type CohortOutcome, outcomeFromFacts } from "./outcome";
import { Problems } from "./problems";
import type { CohortSpec } from "./spec";

/**
 * The cohort engine for FHIR R4: one patient's resources in, one example (raw feature values and a label)
 * or one exclusion reason out. Pure and synchronous, so it runs the same in a Web Worker and in Node.
 * This file reads the resources into facts; outcome.ts does the rest, the same for OMOP.
 */

export type { FhirResource } from "./facts";
export type { PatientResources } from "./history";

export type { CohortOutcome } from "./outcome";

export function extractFhir(spec: CohortSpec, record: PatientResources): CohortOutcome {
  const problems = new Problems();
  return outcomeFromFacts(spec, readFacts(record, problems), problems);
}

/** Reads the record's facts, counting resources left out for lack of a usable time. */
export function readFacts(record: PatientResources, problems: Problems): Facts {
  const facts: Facts = {
    patient: patientFact(record.patient),
    observations: [],
    conditions: [],
    encounters: [],
  };
  for (const r of record.resources) {
    if (r.resourceType === "Observation")
      push(facts.observations, observationFactPlain(r), "Observation", problems);
    else if (r.resourceType === "Condition") push(facts.conditions, conditionFact(r), "Condition", problems);
    else if (r.resourceType === "Encounter") push(facts.encounters, encounterFact(r), "Encounter", problems);
  }
  return sortFacts(facts);
}

function push<T>(into: T[], fact: T | "void" | undefined, type: string, problems: Problems): void {
  if (fact === undefined) problems.add(`${type} without a readable date was ignored`);
  else if (fact !== "void") into.push(fact);
}

const PATIENT_REF = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/**
 * "Patient/<id>" for the patient a resource belongs to (its `subject`, else its `patient` reference; an
 * absolute URL is cut to its last two parts), or for a Patient itself; undefined when it names none, as
 * with a bundle's "urn:uuid:" references, which the caller maps. For grouping a bulk export by patient.
 */
export function patientRef(resource: FhirResource): string | undefined {
  if (resource.resourceType === "Patient")
    return resource.id === undefined ? undefined : `Patient/${resource.id}`;
  const ref = referenceOf(resource.subject) ?? referenceOf(resource.patient);
  const m = ref === undefined ? null : PATIENT_REF.exec(ref);
  return m === null ? undefined : `Patient/${m[1]}`;
}

function referenceOf(field: unknown): string | undefined {
  const ref = (field as { reference?: unknown } | null | undefined)?.reference;
  return typeof ref === "string" ? ref : undefined;
}
