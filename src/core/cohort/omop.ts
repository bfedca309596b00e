import type { ConditionFact, EncounterFact, ObservationFact, PatientFact, Quantity } from "./facts";
import { type Facts, sortFacts } from "./history";
import { type CohortOutcome, outcomeFromFacts } from "./outcome";
import { Problems } from "./problems";
import type { Coding, CohortSpec } from "./spec";
import { parseFhirTime, type Span } from "./time";

/**
 * The cohort engine's facts read from OMOP CDM 5.4 rows, so one cohort spec derives the same features
 * from an OMOP export as from FHIR. Rows arrive already parsed (one object per CSV line, column name to
 * text), so the caller can stream the tables and group them by `personId`.
 *
 * Codes. A spec coding matches an OMOP row in one of two ways:
 * - system OMOP_CONCEPT_SYSTEM: the code is an OMOP concept id, matched against the row's *_concept_id
 *   and *_source_concept_id;
 * - any other system: the code is matched against the row's *_source_value, which holds the code as the
 *   source system wrote it. OMOP does not record which system a source value belongs to, so a source
 *   value is offered under every system the spec names (`specSystems`); a LOINC code ("8480-6") and a
 *   SNOMED code ("59621000") cannot be mistaken for one another, codes of other systems could.
 * The Synthea OMOP export holds LOINC codes in measurement_source_value and observation_source_value,
 * SNOMED CT codes in condition_source_value (and in measurement_source_value for procedures recorded as
 * measurements), and encounter ids, not codes, in visit_source_value: visits match by concept id only
 * (9201 inpatient, 9202 outpatient, 9203 emergency).
 *
 * Dates. Every fact takes the day in its *_date column (the *_datetime column's day when *_date is
 * empty) as the span of that UTC day, exactly as a FHIR date without a time; OMOP datetimes carry no
 * zone and are midnight when the time was not known, so their time of day is not used.
 *
 * Values. value_as_number becomes the quantity, in unit_source_value (else the UCUM code of a few
 * common unit_concept_ids). value_as_concept_id (when not 0) becomes the coded value, as the concept id
 * in text; an OBSERVATION without one takes value_as_string instead. Coded values are therefore OMOP
 * concept ids, not the SNOMED codes a FHIR record gives: a plan's levels must be written for its format.
 */

/** One CSV line of an OMOP table: column name to the cell's text. */
export type OmopRow = Record<string, string | undefined>;

/** The system of a spec coding whose code is an OMOP (Athena) concept id. */
export const OMOP_CONCEPT_SYSTEM = "https://athena.ohdsi.org";

/** One person's rows, already grouped by person_id. */
export interface OmopPersonTables {
  person: OmopRow;
  /** The person's DEATH row, when there is one. */
  death?: OmopRow | undefined;
  measurements: readonly OmopRow[];
  conditions: readonly OmopRow[];
  observations: readonly OmopRow[];
  visits: readonly OmopRow[];
}

/** The person a row belongs to (its person_id as written), or undefined when it names none. */
export function personId(row: OmopRow): string | undefined {
  const id = row.person_id?.trim();
  return id === undefined || id === "" ? undefined : id;
}

/** The non-OMOP code systems a spec names: a row's source values are offered under each of them. */
export function specSystems(spec: CohortSpec): string[] {
  const lists: (readonly Coding[] | undefined)[] = [
    spec.indexDate.kind === "first-encounter" ? spec.indexDate.codes : undefined,
    spec.label.codes,
    ...spec.features.map((f) => ("codes" in f.from ? f.from.codes : undefined)),
  ];
  const systems = new Set(lists.flatMap((codes) => (codes ?? []).map((c) => c.system)));
  systems.delete(OMOP_CONCEPT_SYSTEM);
  return [...systems];
}

/** The cohort engine for OMOP: one person's rows in, one example or one exclusion reason out. */
export function extractOmop(spec: CohortSpec, tables: OmopPersonTables): CohortOutcome {
  const problems = new Problems();
  const facts = omopFacts(tables, problems, specSystems(spec));
  return outcomeFromFacts(spec, facts, problems);
}

/** Reads one person's rows into facts; a row it cannot use is counted in `problems` by table and column. */
export function omopFacts(
  tables: OmopPersonTables,
  problems: Problems,
  sourceSystems: readonly string[],
): Facts {
  const read = (row: OmopRow, table: Table) => readRow(row, table, problems, sourceSystems);
  const observations: ObservationFact[] = [];
  for (const t of [MEASUREMENT, OBSERVATION]) {
    for (const row of t === MEASUREMENT ? tables.measurements : tables.observations) {
      const fact = read(row, t);
      if (fact !== undefined) observations.push(fact);
    }
  }
  const conditions: ConditionFact[] = [];
  for (const row of tables.conditions) {
    const r = read(row, CONDITION);
    if (r !== undefined) conditions.push({ id: r.id, time: r.time, codes: r.codes });
  }
  const encounters: EncounterFact[] = [];
  for (const row of tables.visits) {
    const r = read(row, VISIT);
    if (r !== undefined) encounters.push({ time: r.time, codes: r.codes });
  }
  const patient = personFact(tables.person, tables.death, problems);
  return sortFacts({ patient, observations, conditions, encounters });
}

/**
 * Whole tables grouped by person in memory, for a dry run or a test (the browser's import stages rows in
 * IndexedDB instead). `rows(table)` gives a table's rows, empty when the export lacks it. Rows that name no
 * person, or a person without a PERSON row, are left out; a person's first DEATH row counts, as in the
 * import.
 */
export function groupOmopByPerson(
  rows: (table: OmopFactTable) => readonly OmopRow[],
): Map<string, OmopPersonTables> {
  type Grouped = { person: OmopRow; death?: OmopRow } & Record<
    "measurements" | "conditions" | "observations" | "visits",
    OmopRow[]
  >;
  const persons = new Map<string, Grouped>();
  for (const person of rows("PERSON")) {
    const id = personId(person);
    if (id !== undefined && !persons.has(id))
      persons.set(id, { person, measurements: [], conditions: [], observations: [], visits: [] });
  }
  const tables = [
    ["MEASUREMENT", "measurements"],
    ["CONDITION_OCCURRENCE", "conditions"],
    ["OBSERVATION", "observations"],
    ["VISIT_OCCURRENCE", "visits"],
  ] as const;
  for (const [table, into] of tables) {
    for (const row of rows(table)) persons.get(personId(row) ?? "")?.[into].push(row);
  }
  for (const row of rows("DEATH")) {
    const p = persons.get(personId(row) ?? "");
    if (p !== undefined && p.death === undefined) p.death = row;
  }
  return persons;
}

/** The tables a cohort reads, one row at a time (the browser's import streams them). */
export type OmopFactTable =
  | "PERSON"
  | "DEATH"
  | "MEASUREMENT"
  | "OBSERVATION"
  | "CONDITION_OCCURRENCE"
  | "VISIT_OCCURRENCE";

export type OmopRowFact =
  | { kind: "patient"; fact: PatientFact }
  | { kind: "death"; death: Span }
  | { kind: "observation"; fact: ObservationFact }
  | { kind: "condition"; fact: ConditionFact }
  | { kind: "encounter"; fact: EncounterFact };

/**
 * One row's fact, read exactly as `omopFacts` reads it within a person's tables; undefined (and counted in
 * `problems`) for a row without a readable day. A PERSON row's fact has no death: DEATH rows give it.
 */
export function omopRowFact(
  table: OmopFactTable,
  row: OmopRow,
  problems: Problems,
  sourceSystems: readonly string[],
): OmopRowFact | undefined {
  if (table === "PERSON") return { kind: "patient", fact: personFact(row, undefined, problems) };
  if (table === "DEATH") {
    const death = deathSpan(row, problems);
    return death === undefined ? undefined : { kind: "death", death };
  }
  const t = { MEASUREMENT, OBSERVATION, CONDITION_OCCURRENCE: CONDITION, VISIT_OCCURRENCE: VISIT }[table];
  const r = readRow(row, t, problems, sourceSystems);
  if (r === undefined) return undefined;
  if (table === "CONDITION_OCCURRENCE")
    return { kind: "condition", fact: { id: r.id, time: r.time, codes: r.codes } };
  if (table === "VISIT_OCCURRENCE") return { kind: "encounter", fact: { time: r.time, codes: r.codes } };
  return { kind: "observation", fact: r };
}

interface Table {
  name: string;
  id: string;
  concept: string;
  sourceConcept: string;
  source: string;
  date: string;
  datetime: string;
  /** Whether the table holds values (MEASUREMENT, OBSERVATION). */
  valued: boolean;
}

const table = (name: string, prefix: string, date: string, id = `${prefix}_id`): Table => ({
  name,
  id,
  concept: `${prefix}_concept_id`,
  sourceConcept: `${prefix}_source_concept_id`,
  source: `${prefix}_source_value`,
  date: `${date}_date`,
  datetime: `${date}_datetime`,
  valued: name === "MEASUREMENT" || name === "OBSERVATION",
});

const MEASUREMENT = table("MEASUREMENT", "measurement", "measurement");
const OBSERVATION = table("OBSERVATION", "observation", "observation");
const CONDITION = table("CONDITION_OCCURRENCE", "condition", "condition_start", "condition_occurrence_id");
const VISIT = table("VISIT_OCCURRENCE", "visit", "visit_start", "visit_occurrence_id");

/** A row's time, codes and (for valued tables) values; undefined, counted, without a readable day. */
function readRow(
  row: OmopRow,
  t: Table,
  problems: Problems,
  systems: readonly string[],
): ObservationFact | undefined {
  const time = rowDay(row, t);
  if (time === undefined) {
    problems.add(`${t.name} row without a readable ${t.date} was ignored`);
    return undefined;
  }
  const codes: string[] = [];
  for (const column of [t.concept, t.sourceConcept]) {
    const id = conceptId(row[column]);
    if (id === "bad") problems.add(`${t.name} ${column} is not a concept id; that code was ignored`);
    // *_source_concept_id often repeats *_concept_id (every Synthea row does); one key is enough.
    else if (id !== undefined && codes[0] !== `${OMOP_CONCEPT_SYSTEM}|${id}`)
      codes.push(`${OMOP_CONCEPT_SYSTEM}|${id}`);
  }
  const source = row[t.source]?.trim();
  if (source) for (const system of systems) codes.push(`${system}|${source}`);
  // The table name keeps a MEASUREMENT and an OBSERVATION with the same id apart in the time order.
  const id = `${t.name}/${row[t.id]?.trim() ?? ""}`;
  if (!t.valued) return { id, time, codes, quantity: undefined, concept: undefined, components: [] };
  return {
    id,
    time,
    codes,
    quantity: quantity(row, t, problems),
    concept: concept(row, t, problems),
    components: [],
  };
}

const DAY = /^(\d{4}-\d{2}-\d{2})(?:[ T][0-9:.+\-Z]*)?$/;

/** The UTC day of the row's *_date, else (when that is empty) of its *_datetime. */
function rowDay(row: OmopRow, t: Table): Span | undefined {
  return dateOrDatetime(row[t.date], row[t.datetime]);
}

// The datetime stands in only for an empty date, so a date that is there but unreadable is reported.
function dateOrDatetime(date: string | undefined, datetime: string | undefined): Span | undefined {
  return date?.trim() ? day(date) : day(datetime);
}

function day(text: string | undefined): Span | undefined {
  const m = DAY.exec(text?.trim() ?? "");
  return m === null ? undefined : parseFhirTime(m[1]);
}

/** A concept id as text, undefined for none (empty or 0, OMOP's "no matching concept"), "bad" otherwise. */
function conceptId(text: string | undefined): string | "bad" | undefined {
  const t = text?.trim() ?? "";
  if (t === "" || /^0+$/.test(t)) return undefined;
  return /^\d{1,18}$/.test(t) ? t.replace(/^0+/, "") : "bad";
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

// UCUM codes for OMOP unit concepts, for rows without unit_source_value; the pairs are those the Synthea
// OMOP export writes side by side, limited to units ucum.ts can convert.
const UNIT_CONCEPTS = new Map([
  ["8582", "cm"],
  ["9529", "kg"],
  ["8876", "mm[Hg]"],
  ["8554", "%"],
  ["9531", "kg/m2"],
  ["8840", "mg/dL"],
  ["8713", "g/dL"],
  ["8636", "g/L"],
  ["586323", "Cel"],
]);

function quantity(row: OmopRow, t: Table, problems: Problems): Quantity | undefined {
  const text = row.value_as_number?.trim() ?? "";
  if (text === "") return undefined;
  const value = NUMBER.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value)) {
    problems.add(`${t.name} value_as_number is not a number; the row was kept without a value`);
    return undefined;
  }
  const source = row.unit_source_value?.trim();
  const unitId = conceptId(row.unit_concept_id);
  const unit = source
    ? source
    : typeof unitId === "string" && unitId !== "bad"
      ? UNIT_CONCEPTS.get(unitId)
      : undefined;
  return { value, unit };
}

function concept(row: OmopRow, t: Table, problems: Problems): string | undefined {
  const id = conceptId(row.value_as_concept_id);
  if (id === "bad")
    problems.add(`${t.name} value_as_concept_id is not a concept id; the coded value was ignored`);
  else if (id !== undefined) return id;
  if (t !== OBSERVATION) return undefined;
  const text = row.value_as_string?.trim();
  return text ? text : undefined;
}

const GENDER_CONCEPTS = new Map([
  ["8507", "male"],
  ["8532", "female"],
]);
const GENDER_SOURCES = new Map([
  ["m", "male"],
  ["male", "male"],
  ["f", "female"],
  ["female", "female"],
]);

function personFact(person: OmopRow, death: OmopRow | undefined, problems: Problems): PatientFact {
  const id = conceptId(person.gender_concept_id);
  const byConcept = typeof id === "string" ? GENDER_CONCEPTS.get(id) : undefined;
  const gender =
    byConcept ?? GENDER_SOURCES.get(person.gender_source_value?.trim().toLowerCase() ?? "") ?? "unknown";
  if (gender === "unknown")
    problems.add("PERSON gender_concept_id is neither 8507 (male) nor 8532 (female); sex read as unknown");
  const deathDay = death === undefined ? undefined : deathSpan(death, problems);
  return { birth: birthSpan(person, problems), gender, death: deathDay };
}

function deathSpan(death: OmopRow, problems: Problems): Span | undefined {
  const day = dateOrDatetime(death.death_date, death.death_datetime);
  if (day === undefined) problems.add("DEATH row without a readable death_date was ignored");
  return day;
}

/**
 * year_of_birth with month_of_birth and day_of_birth as far as they are given (a partial date, as FHIR's
 * birthDate may be), else the day of birth_datetime.
 */
function birthSpan(person: OmopRow, problems: Problems): Span | undefined {
  const [y, m, d] = [person.year_of_birth, person.month_of_birth, person.day_of_birth].map(whole);
  if (y !== undefined && y >= 1000 && y <= 9999) {
    const parts = [String(y)];
    if (m !== undefined) parts.push(String(m).padStart(2, "0"));
    if (m !== undefined && d !== undefined) parts.push(String(d).padStart(2, "0"));
    const span = parseFhirTime(parts.join("-"));
    if (span !== undefined) return span;
    problems.add("PERSON month_of_birth and day_of_birth do not make a date; birth read as the year only");
    return parseFhirTime(String(y));
  }
  const fromDatetime = day(person.birth_datetime);
  if (fromDatetime === undefined) problems.add("PERSON year_of_birth is not a year; age is missing");
  return fromDatetime;
}

/** A whole number written as digits ("4", "04", "4.0"), else undefined. */
function whole(text: string | undefined): number | undefined {
  const t = text?.trim() ?? "";
  return /^\d{1,4}(?:\.0+)?$/.test(t) ? Number(t) : undefined;
}
