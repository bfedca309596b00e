import fhirpath from "fhirpath";
import r4 from "fhirpath/fhir-context/r4";
import { parseFhirTime, type Span } from "./time";

/**
 * Reads the few fields the cohort engine uses out of FHIR R4 resources into plain, typed facts. Field
 * access goes through FHIRPath with the R4 model, so choice types (`effective[x]`, `value[x]`, `onset[x]`)
 * resolve by their declared types rather than by guessing property names; each expression is compiled
 * once, here. Everything after this file works on facts, never on resources.
 */

/** A FHIR resource as parsed JSON; only resourceType is trusted to be there. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  [field: string]: unknown;
}

export interface Quantity {
  value: number;
  /** valueQuantity.code, else .unit; undefined when neither is there. */
  unit: string | undefined;
}

interface Coded {
  /** Every coding as "system|code", for matching against a spec's codes. */
  codes: string[];
}

export interface ObservationFact extends Coded {
  id: string;
  time: Span;
  quantity: Quantity | undefined;
  /** The first coding's code of valueCodeableConcept. */
  concept: string | undefined;
  components: (Coded & { quantity: Quantity | undefined })[];
}

export interface ConditionFact extends Coded {
  id: string;
  time: Span;
}

export interface EncounterFact extends Coded {
  time: Span;
}

const compile = (expression: string) => fhirpath.compile(expression, r4) as (r: unknown) => unknown[];
const compileIn = (base: string, expression: string) =>
  fhirpath.compile({ base, expression }, r4) as (r: unknown) => unknown[];

const OBS = {
  status: compile("Observation.status"),
  codings: compile("Observation.code.coding"),
  // effective[x] as dateTime or instant, else the start of a Period; `issued` only when there is neither
  // (it is when the result was released, which is later than when it was measured).
  times: [
    compile("Observation.effective.ofType(dateTime)"),
    compile("Observation.effective.ofType(instant)"),
    compile("Observation.effective.ofType(Period).start"),
    compile("Observation.issued"),
  ],
  quantity: compile("Observation.value.ofType(Quantity)"),
  concept: compile("Observation.value.ofType(CodeableConcept).coding.code"),
  components: compile("Observation.component"),
  componentCodings: compileIn("Observation.component", "code.coding"),
  componentQuantity: compileIn("Observation.component", "value.ofType(Quantity)"),
};

const CONDITION = {
  verification: compile("Condition.verificationStatus.coding.code"),
  codings: compile("Condition.code.coding"),
  // onset[x] as dateTime, else the start of an onset Period, else when it was recorded.
  times: [
    compile("Condition.onset.ofType(dateTime)"),
    compile("Condition.onset.ofType(Period).start"),
    compile("Condition.recordedDate"),
  ],
};

const ENCOUNTER = {
  status: compile("Encounter.status"),
  codings: compile("Encounter.type.coding"),
  start: compile("Encounter.period.start"),
};

const PATIENT = {
  birthDate: compile("Patient.birthDate"),
  gender: compile("Patient.gender"),
  deceased: compile("Patient.deceased.ofType(dateTime)"),
};

// Records that say they should not have existed; "cancelled" observations and encounters never happened.
export const VOID_STATUS = new Set(["entered-in-error", "cancelled"]);
const VOID_VERIFICATION = new Set(["refuted", "entered-in-error"]);

export function codingKeys(codings: unknown[]): string[] {
  const keys: string[] = [];
  for (const c of codings) {
    const { system, code } = (c ?? {}) as { system?: unknown; code?: unknown };
    if (typeof system === "string" && typeof code === "string") keys.push(`${system}|${code}`);
  }
  return keys;
}

function firstTime(readers: ((r: unknown) => unknown[])[], resource: unknown): Span | undefined {
  for (const read of readers) {
    const found = read(resource);
    if (found.length > 0) return parseFhirTime(found[0]);
  }
  return undefined;
}

export function toQuantity(found: unknown[]): Quantity | undefined {
  const q = found[0] as { value?: unknown; code?: unknown; unit?: unknown } | undefined;
  if (q === undefined || typeof q.value !== "number" || !Number.isFinite(q.value)) return undefined;
  const unit = typeof q.code === "string" ? q.code : typeof q.unit === "string" ? q.unit : undefined;
  return { value: q.value, unit };
}

/**
 * The observation as a fact; "void" when its status says it does not count, undefined without a time.
 * This is the reference reading; the engine uses `observationFactPlain`, which a test holds equal to it.
 */
export function observationFactByFhirpath(r: FhirResource): ObservationFact | "void" | undefined {
  if (VOID_STATUS.has(OBS.status(r)[0] as string)) return "void";
  const time = firstTime(OBS.times, r);
  if (time === undefined) return undefined;
  const components = OBS.components(r).map((c) => ({
    codes: codingKeys(OBS.componentCodings(c)),
    quantity: toQuantity(OBS.componentQuantity(c)),
  }));
  const concept = OBS.concept(r)[0];
  return {
    id: r.id ?? "",
    time,
    codes: codingKeys(OBS.codings(r)),
    quantity: toQuantity(OBS.quantity(r)),
    concept: typeof concept === "string" ? concept : undefined,
    components,
  };
}

/** The condition as a fact; "void" when refuted or entered in error, undefined without any date. */
export function conditionFact(r: FhirResource): ConditionFact | "void" | undefined {
  if (CONDITION.verification(r).some((code) => VOID_VERIFICATION.has(code as string))) return "void";
  const time = firstTime(CONDITION.times, r);
  if (time === undefined) return undefined;
  return { id: r.id ?? "", time, codes: codingKeys(CONDITION.codings(r)) };
}

/** The encounter as a fact; "void" when cancelled or entered in error, undefined without a start. */
export function encounterFact(r: FhirResource): EncounterFact | "void" | undefined {
  if (VOID_STATUS.has(ENCOUNTER.status(r)[0] as string)) return "void";
  const time = parseFhirTime(ENCOUNTER.start(r)[0]);
  if (time === undefined) return undefined;
  return { time, codes: codingKeys(ENCOUNTER.codings(r)) };
}

export interface PatientFact {
  birth: Span | undefined;
  gender: string | undefined;
  death: Span | undefined;
}

export function patientFact(r: FhirResource): PatientFact {
  const gender = PATIENT.gender(r)[0];
  return {
    birth: parseFhirTime(PATIENT.birthDate(r)[0]),
    gender: typeof gender === "string" ? gender : undefined,
    death: parseFhirTime(PATIENT.deceased(r)[0]),
  };
}
