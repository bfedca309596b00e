import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import Papa from "papaparse";
import { describe, expect, it } from "vitest";
import { type CohortOutcome, extractFhir, type FhirResource } from "../../../src/core/cohort/fhir";
import {
  extractOmop,
  groupOmopByPerson,
  type OmopPersonTables,
  type OmopRow,
  omopFacts,
  personId,
  specSystems,
} from "../../../src/core/cohort/omop";
import { Problems } from "../../../src/core/cohort/problems";
import { type CohortSpec, parseCohortSpec } from "../../../src/core/cohort/spec";
import { concept, LOINC, loinc, OMOP_INDEX, omopSpec, SNOMED, snomed } from "../../support/cohort-specs";

const DATA = "../shared/data/omop/synthea27nj-cdm54";
if (!existsSync(DATA)) console.warn("cohort-omop real-data tests skipped: ../shared/data/omop absent");

const INDEX = OMOP_INDEX;
const spec = omopSpec;

const RANGES: Record<string, [number, number]> = {
  age: [0, 120],
  bmi: [10, 80],
  systolic: [60, 250],
  diastolic: [30, 150],
  hba1c: [3, 20],
  bpCount: [0, 10_000],
  hypertension: [0, 1],
  systolicById: [60, 250],
};

function readTable(name: string): OmopRow[] {
  const text = gunzipSync(readFileSync(`${DATA}/${name}.csv.gz`)).toString("utf8");
  const parsed = Papa.parse<OmopRow>(text, { header: true, skipEmptyLines: true });
  expect(parsed.errors).toEqual([]);
  return parsed.data;
}

/** The tables grouped by person_id, as an import worker streaming the CSVs would group them. */
function readPersons(): Map<string, OmopPersonTables> {
  return groupOmopByPerson(readTable);
}

function examples(outcomes: CohortOutcome[]) {
  return outcomes.filter((o): o is Extract<CohortOutcome, { kind: "example" }> => o.kind === "example");
}

describe.runIf(existsSync(DATA))("extractOmop on the Synthea27Nj OMOP export", () => {
  const persons = existsSync(DATA) ? readPersons() : new Map<string, OmopPersonTables>();

  it("derives plausible features for every one of the 28 persons", () => {
    expect(persons.size).toBe(28);
    const outcomes = [...persons.values()].map((t) => extractOmop(spec, t));
    const got = examples(outcomes);
    const excluded = outcomes.flatMap((o) => (o.kind === "excluded" ? [o.reason] : []));
    // Born 2019 and 2022, died 2001 and 2009: checked against PERSON and DEATH by hand.
    expect(excluded.sort()).toEqual([
      "born after the index date",
      "born after the index date",
      "died before the index date",
      "died before the index date",
    ]);
    expect(got.length).toBe(24);

    const missing: Record<string, number> = {};
    const seen: Record<string, string> = {};
    spec.features.forEach((feature, f) => {
      missing[feature.name] = got.filter((e) => e.values[f] === undefined).length;
      const present = got.map((e) => e.values[f]).filter((v) => v !== undefined);
      seen[feature.name] =
        feature.name === "sex"
          ? `female ${present.filter((v) => v === "female").length}, male ${present.filter((v) => v === "male").length}`
          : `${Math.min(...(present as number[]))}..${Math.max(...(present as number[]))}`;
      for (const e of got) {
        const v = e.values[f];
        if (feature.name === "sex") expect(["female", "male"]).toContain(v);
        else if (v !== undefined) {
          const [lo, hi] = RANGES[feature.name] ?? [Number.NaN, Number.NaN];
          expect(v, feature.name).toBeGreaterThanOrEqual(lo);
          expect(v, feature.name).toBeLessThanOrEqual(hi);
        }
      }
    });
    const positives = got.filter((e) => e.label === 1).length;
    const problems = [...new Set(got.flatMap((e) => e.problems))];
    console.info(
      `OMOP cohort: ${got.length} examples, ${positives} positive, ${excluded.length} excluded; missing per feature`,
      missing,
      "observed range",
      seen,
      "problems",
      problems,
    );
    // Both label classes, and the vitals most adults have measured are there for most persons.
    expect(positives).toBeGreaterThan(0);
    expect(positives).toBeLessThan(got.length);
    expect(missing.age).toBe(0);
    expect(missing.systolic).toBeLessThan(got.length / 2);
    expect(missing.bmi).toBeLessThan(got.length / 2);
    // CONDITION_OCCURRENCE holds 59621000 for persons 8, 12, 13, 16 and 22, all dated before 2015.
    expect(
      got.filter((e) => e.values[spec.features.findIndex((f) => f.name === "hypertension")] === 1).length,
    ).toBe(5);
  });

  it("matches the real rows by concept id exactly as by LOINC source value", () => {
    const bySource = spec.features.findIndex((f) => f.name === "systolic");
    const byId = spec.features.findIndex((f) => f.name === "systolicById");
    let compared = 0;
    for (const outcome of examples([...persons.values()].map((t) => extractOmop(spec, t)))) {
      expect(outcome.values[byId]).toBe(outcome.values[bySource]);
      if (outcome.values[bySource] !== undefined) compared += 1;
    }
    expect(compared).toBeGreaterThan(10);
  });

  it("lets nothing dated on or after the index reach a feature", () => {
    const before = [...persons.values()].map((t) => extractOmop(spec, t));
    const withFuture = (t: OmopPersonTables, date: string): OmopPersonTables => ({
      ...t,
      measurements: [
        ...t.measurements,
        ...["39156-5", "8480-6", "8462-4", "4548-4"].map((code, i) =>
          measurement({
            id: `${900_000 + i}`,
            code,
            date,
            value: "9999",
            unit: "mm[Hg]",
            conceptId: "3004249",
          }),
        ),
      ],
      conditions: [...t.conditions, condition({ code: "59621000", date })],
    });
    // The index day itself and later: the features stay as they were.
    for (const date of [INDEX, "2018-06-30", "2030-01-01"]) {
      const after = [...persons.values()].map((t) => extractOmop(spec, withFuture(t, date)));
      after.forEach((o, i) => {
        const b = before[i] as CohortOutcome;
        expect(o.kind).toBe(b.kind);
        if (o.kind === "example" && b.kind === "example") expect(o.values).toEqual(b.values);
      });
    }
    // The day before the index: the same rows do change them, so the check above can fail.
    const dayBefore = examples(
      [...persons.values()].map((t) => extractOmop(spec, withFuture(t, "2017-12-31"))),
    );
    const systolic = spec.features.findIndex((f) => f.name === "systolic");
    expect(dayBefore.every((e) => e.values[systolic] === 9999)).toBe(true);
  });

  it("reads every row of the export without a problem", () => {
    for (const t of persons.values()) {
      const problems = new Problems();
      omopFacts(t, problems, [LOINC, SNOMED]);
      expect(problems.list()).toEqual([]);
    }
  });
});

function person(fields: Partial<OmopRow> = {}): OmopRow {
  return {
    person_id: "98765",
    gender_concept_id: "8532",
    year_of_birth: "1970",
    month_of_birth: "5",
    day_of_birth: "17",
    birth_datetime: "1970-05-17 00:00:00",
    gender_source_value: "F",
    ...fields,
  };
}

function measurement(m: {
  id?: string;
  code: string;
  conceptId?: string;
  date: string;
  value: string;
  unit?: string;
}): OmopRow {
  return {
    measurement_id: m.id ?? "1",
    person_id: "98765",
    measurement_concept_id: m.conceptId ?? "0",
    measurement_date: m.date,
    measurement_datetime: `${m.date} 00:00:00`,
    value_as_number: m.value,
    value_as_concept_id: "0",
    unit_concept_id: "0",
    measurement_source_value: m.code,
    unit_source_value: m.unit ?? "",
  };
}

function condition(c: { code: string; conceptId?: string; date: string }): OmopRow {
  return {
    condition_occurrence_id: "7",
    person_id: "98765",
    condition_concept_id: c.conceptId ?? "0",
    condition_start_date: c.date,
    condition_start_datetime: "",
    condition_source_value: c.code,
  };
}

const tables = (t: Partial<OmopPersonTables>): OmopPersonTables => ({
  person: person(),
  measurements: [],
  conditions: [],
  observations: [],
  visits: [],
  ...t,
});

const handSpec = (features: CohortSpec["features"]) =>
  parseCohortSpec({
    indexDate: { kind: "fixed", date: "2020-01-01" },
    features,
    label: { kind: "condition", codes: [snomed("444814009")], horizonDays: 365 },
  });

function values(s: CohortSpec, t: OmopPersonTables) {
  const outcome = extractOmop(s, t);
  if (outcome.kind !== "example") throw new Error(`expected an example, got ${outcome.reason}`);
  return outcome.values;
}

describe("OMOP code matching", () => {
  const both = measurement({ code: "8480-6", conceptId: "3004249", date: "2019-01-01", value: "130" });
  const idOnly = measurement({ code: "", conceptId: "3004249", date: "2019-01-01", value: "131" });
  const sourceOnly = measurement({ code: "8480-6", conceptId: "0", date: "2019-01-01", value: "132" });
  const s = handSpec([
    { name: "byId", from: { kind: "observation", codes: [concept("3004249")], stat: "latest" } },
    { name: "bySource", from: { kind: "observation", codes: [loinc("8480-6")], stat: "latest" } },
    { name: "htnById", from: { kind: "condition", codes: [concept("320128")] } },
    { name: "htnBySource", from: { kind: "condition", codes: [snomed("59621000")] } },
  ]);

  it("matches a concept id against *_concept_id and any other system against *_source_value", () => {
    expect(values(s, tables({ measurements: [both] }))).toEqual([130, 130, 0, 0]);
    expect(values(s, tables({ measurements: [idOnly] }))).toEqual([131, undefined, 0, 0]);
    expect(values(s, tables({ measurements: [sourceOnly] }))).toEqual([undefined, 132, 0, 0]);
    const byId = condition({ code: "", conceptId: "320128", date: "2015-01-01" });
    const bySource = condition({ code: "59621000", date: "2015-01-01" });
    expect(values(s, tables({ conditions: [byId] }))).toEqual([undefined, undefined, 1, 0]);
    expect(values(s, tables({ conditions: [bySource] }))).toEqual([undefined, undefined, 0, 1]);
  });

  it("offers source values only under the spec's own systems, never under the concept system", () => {
    expect(specSystems(s).sort()).toEqual([LOINC, SNOMED]);
    // A source value that looks like a concept id does not match the concept system.
    const row = measurement({ code: "3004249", conceptId: "0", date: "2019-01-01", value: "140" });
    expect(values(s, tables({ measurements: [row] }))).toEqual([undefined, undefined, 0, 0]);
    // The right code under another system does not match.
    const other = handSpec([
      { name: "x", from: { kind: "observation", codes: [snomed("9999-9")], stat: "latest" } },
    ]);
    expect(values(other, tables({ measurements: [sourceOnly] }))).toEqual([undefined]);
  });

  it("reads sex from the gender concept, else from the source value, else as unknown", () => {
    const sex = handSpec([{ name: "sex", from: { kind: "sex" } }]);
    const of = (fields: Partial<OmopRow>) => values(sex, tables({ person: person(fields) }))[0];
    expect(of({ gender_concept_id: "8507", gender_source_value: "" })).toBe("male");
    expect(of({ gender_concept_id: "8532", gender_source_value: "M" })).toBe("female");
    expect(of({ gender_concept_id: "0", gender_source_value: "M" })).toBe("male");
    expect(of({ gender_concept_id: "0", gender_source_value: "f" })).toBe("female");
    expect(of({ gender_concept_id: "0", gender_source_value: "" })).toBe("unknown");
  });

  it("reads the birth date from year, month and day, as a partial date when month or day is missing", () => {
    const age = handSpec([{ name: "age", from: { kind: "age" } }]);
    const of = (fields: Partial<OmopRow>) => values(age, tables({ person: person(fields) }))[0];
    expect(of({})).toBe(49);
    expect(of({ month_of_birth: "12", day_of_birth: "31" })).toBe(49);
    expect(of({ year_of_birth: "1969", month_of_birth: "12", day_of_birth: "31" })).toBe(50);
    // Year only: read as 1 January, the oldest age the year allows, as for a FHIR birthDate "1970".
    expect(of({ month_of_birth: "", day_of_birth: "" })).toBe(50);
    expect(
      of({ year_of_birth: "", month_of_birth: "", day_of_birth: "", birth_datetime: "1980-02-02" }),
    ).toBe(39);
  });

  it("takes value_as_concept_id, else value_as_string, as an OBSERVATION's coded value", () => {
    const smoking = handSpec([
      { name: "smoking", from: { kind: "observation-code", codes: [loinc("72166-2")] } },
    ]);
    const obs = (fields: Partial<OmopRow>): OmopRow => ({
      observation_id: "3",
      observation_concept_id: "43054909",
      observation_date: "2019-02-02",
      observation_source_value: "72166-2",
      value_as_concept_id: "0",
      value_as_string: "",
      ...fields,
    });
    expect(values(smoking, tables({ observations: [obs({ value_as_concept_id: "45879404" })] }))).toEqual([
      "45879404",
    ]);
    expect(values(smoking, tables({ observations: [obs({ value_as_string: "Never smoker" })] }))).toEqual([
      "Never smoker",
    ]);
    expect(values(smoking, tables({ observations: [obs({})] }))).toEqual([undefined]);
  });
});

describe("OMOP bad rows", () => {
  it("reports an unreadable date or value by table and column, keeps going, and never quotes the cell", () => {
    const s = handSpec([
      { name: "age", from: { kind: "age" } },
      { name: "sbp", from: { kind: "observation", codes: [loinc("8480-6")], stat: "latest" } },
      { name: "sbpCount", from: { kind: "observation", codes: [loinc("8480-6")], stat: "count" } },
      { name: "htn", from: { kind: "condition", codes: [snomed("59621000")] } },
    ]);
    const outcome = extractOmop(
      s,
      tables({
        measurements: [
          measurement({ id: "1", code: "8480-6", date: "2019-02-30", value: "150" }),
          measurement({ id: "2", code: "8480-6", date: "2019-03-01", value: "Smith 120" }),
          measurement({ id: "3", code: "8480-6", date: "2019-01-01", value: "125", unit: "mm[Hg]" }),
        ],
        conditions: [condition({ code: "59621000", date: "Jan 5th 2015" })],
        visits: [{ visit_occurrence_id: "4", visit_concept_id: "X9202", visit_start_date: "2019-01-01" }],
      }),
    );
    expect(outcome.kind).toBe("example");
    if (outcome.kind !== "example") return;
    // The unreadable value's row still counts as a measurement, with no number; the undated one is gone.
    expect(outcome.values).toEqual([49, 125, 2, 0]);
    expect(outcome.problems).toEqual([
      "MEASUREMENT row without a readable measurement_date was ignored",
      "MEASUREMENT value_as_number is not a number; the row was kept without a value",
      "CONDITION_OCCURRENCE row without a readable condition_start_date was ignored",
      "VISIT_OCCURRENCE visit_concept_id is not a concept id; that code was ignored",
      "sbp: a matching Observation has no numeric value",
    ]);
    const text = outcome.problems.join("\n");
    for (const cell of ["2019-02-30", "Smith", "Jan 5th", "X9202", "98765", "2019-03-01"])
      expect(text).not.toContain(cell);
  });

  it("reports a person whose birth year is unreadable and derives the rest", () => {
    const s = handSpec([
      { name: "age", from: { kind: "age" } },
      { name: "sex", from: { kind: "sex" } },
    ]);
    const outcome = extractOmop(s, tables({ person: person({ year_of_birth: "19x0", birth_datetime: "" }) }));
    expect(outcome).toEqual({
      kind: "example",
      values: [undefined, "female"],
      label: 0,
      problems: ["PERSON year_of_birth is not a year; age is missing"],
    });
  });

  it("finds the person of a row by person_id", () => {
    expect(personId({ person_id: " 42 " })).toBe("42");
    expect(personId({ person_id: "" })).toBeUndefined();
    expect(personId({})).toBeUndefined();
  });
});

describe("OMOP and FHIR give the same outcome for the same record", () => {
  const s = parseCohortSpec({
    indexDate: { kind: "first-encounter", onOrAfter: "2019-01-01" },
    features: [
      { name: "age", from: { kind: "age" } },
      { name: "sex", from: { kind: "sex" } },
      { name: "sbp", from: { kind: "observation", codes: [loinc("8480-6")], stat: "mean", unit: "mm[Hg]" } },
      {
        name: "sbpLast",
        from: { kind: "observation", codes: [loinc("8480-6")], stat: "latest", windowDays: 400 },
      },
      { name: "htn", from: { kind: "condition", codes: [snomed("59621000")] } },
    ],
    label: { kind: "condition", codes: [snomed("444814009")], horizonDays: 365, excludePrior: true },
  });
  const days = ["2017-06-01", "2018-03-01", "2019-04-01", "2019-04-02", "2019-09-01"];
  const sbp = ["120", "kPa:16", "140", "150", "170"];

  const omop = tables({
    person: person({ gender_concept_id: "8507", gender_source_value: "M" }),
    measurements: days.map((date, i) => {
      const [unit, value] = (sbp[i] as string).includes(":")
        ? (sbp[i] as string).split(":")
        : ["mm[Hg]", sbp[i] as string];
      return measurement({ id: String(i), code: "8480-6", date, value: value as string, unit });
    }),
    conditions: [
      condition({ code: "59621000", date: "2016-01-01" }),
      condition({ code: "444814009", date: "2019-08-01" }),
    ],
    visits: [
      { visit_occurrence_id: "1", visit_concept_id: "9202", visit_start_date: "2018-12-31" },
      { visit_occurrence_id: "2", visit_concept_id: "9202", visit_start_date: "2019-04-02" },
    ],
  });
  const fhir: { patient: FhirResource; resources: FhirResource[] } = {
    patient: { resourceType: "Patient", id: "p", gender: "male", birthDate: "1970-05-17" },
    resources: [
      ...days.map((date, i): FhirResource => {
        const [unit, value] = (sbp[i] as string).includes(":")
          ? (sbp[i] as string).split(":")
          : ["mm[Hg]", sbp[i] as string];
        return {
          resourceType: "Observation",
          id: `MEASUREMENT/${i}`,
          status: "final",
          code: { coding: [loinc("8480-6")] },
          effectiveDateTime: date,
          valueQuantity: { value: Number(value), code: unit },
        };
      }),
      {
        resourceType: "Condition",
        id: "c1",
        code: { coding: [snomed("59621000")] },
        onsetDateTime: "2016-01-01",
      },
      {
        resourceType: "Condition",
        id: "c2",
        code: { coding: [snomed("444814009")] },
        onsetDateTime: "2019-08-01",
      },
      { resourceType: "Encounter", id: "e1", status: "finished", period: { start: "2018-12-31" } },
      { resourceType: "Encounter", id: "e2", status: "finished", period: { start: "2019-04-02" } },
    ],
  };

  it("derives equal values, label and problems", () => {
    const fromOmop = extractOmop(s, omop);
    expect(fromOmop).toEqual(extractFhir(s, fhir));
    // Index 2019-04-02: the 2019-04-02 measurement is on the index day and left out; 16 kPa is 120.0 mm[Hg].
    expect(fromOmop).toMatchObject({
      kind: "example",
      label: 1,
      values: [48, "male", expect.any(Number), 140, 1],
    });
  });
});
