import { existsSync, readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { observationFactByFhirpath } from "../../../src/core/cohort/facts";
import {
  type CohortOutcome,
  extractFhir,
  type FhirResource,
  patientRef,
} from "../../../src/core/cohort/fhir";
import { observationFactPlain } from "../../../src/core/cohort/observation-plain";
import { type CohortSpec, CohortSpecError, parseCohortSpec } from "../../../src/core/cohort/spec";
import { convertUnit } from "../../../src/core/cohort/ucum";
import { hypertension, loinc, snomed } from "../../support/cohort-specs";

const DATA = "../shared/data/fhir";
if (!existsSync(DATA)) console.warn("cohort-fhir real-data tests skipped: ../shared/data absent");

/**
 * A hypertension risk model as a clinician would write it. Index 2016-01-01 because the Synthea sample's
 * vital signs start around 2010 and hypertension diagnoses in 2016–2018 give both label classes.
 */

type Grouped = Map<string, { patient: FhirResource; resources: FhirResource[] }>;

function ndjson(path: string): FhirResource[] {
  const text = gunzipSync(readFileSync(path)).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as FhirResource);
}

/** A bulk export grouped by patient reference, as the import worker will do. */
function readBulk(dir: string): Grouped {
  const groups: Grouped = new Map();
  const others: [string, FhirResource][] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ndjson.gz") && !f.startsWith("log"))) {
    for (const r of ndjson(`${dir}/${file}`)) {
      const ref = patientRef(r);
      if (ref === undefined) continue;
      if (r.resourceType === "Patient") groups.set(ref, { patient: r, resources: [] });
      else others.push([ref, r]);
    }
  }
  for (const [ref, r] of others) groups.get(ref)?.resources.push(r);
  return groups;
}

/** One transaction Bundle per patient; its urn:uuid references are rewritten to Patient/<id>. */
function readBundles(dir: string): Grouped {
  const groups: Grouped = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json.gz"))) {
    const bundle = JSON.parse(gunzipSync(readFileSync(`${dir}/${file}`)).toString("utf8")) as {
      entry: { fullUrl: string; resource: FhirResource }[];
    };
    const patient = bundle.entry.find((e) => e.resource.resourceType === "Patient");
    if (patient === undefined) continue; // the hospital-information bundle holds no patient
    const urn = patient.fullUrl;
    const resources = bundle.entry
      .map((e) => e.resource)
      .filter((r) => r.resourceType !== "Patient")
      .map((r) => rewriteSubject(r, urn, `Patient/${patient.resource.id}`));
    groups.set(`Patient/${patient.resource.id}`, { patient: patient.resource, resources });
  }
  return groups;
}

function rewriteSubject(r: FhirResource, urn: string, ref: string): FhirResource {
  const subject = r.subject as { reference?: string } | undefined;
  return subject?.reference === urn ? { ...r, subject: { ...subject, reference: ref } } : r;
}

// Hand-made resources for the rules; every one refers to the same patient.
const PATIENT: FhirResource = {
  resourceType: "Patient",
  id: "p1",
  gender: "female",
  birthDate: "1970-06-15",
};
const subject = { reference: "Patient/p1" };

function observation(
  code: string,
  at: string,
  value?: number,
  unit?: string,
  extra: object = {},
): FhirResource {
  return {
    resourceType: "Observation",
    id: `o-${code}-${at}-${value}`,
    status: "final",
    subject,
    code: { coding: [loinc(code)] },
    effectiveDateTime: at,
    ...(value === undefined
      ? {}
      : { valueQuantity: { value, unit, system: "http://unitsofmeasure.org", code: unit } }),
    ...extra,
  };
}

function condition(code: string, onset: string, verification?: string): FhirResource {
  return {
    resourceType: "Condition",
    id: `c-${code}-${onset}`,
    subject,
    code: { coding: [snomed(code)] },
    onsetDateTime: onset,
    ...(verification === undefined ? {} : { verificationStatus: { coding: [{ code: verification }] } }),
  };
}

// Features as unchecked JSON: parseCohortSpec is what checks them.
function spec(features: unknown[], date = "2016-01-01"): CohortSpec {
  return parseCohortSpec({
    indexDate: { kind: "fixed", date },
    features,
    label: { kind: "condition", codes: [snomed("38341003")], horizonDays: 365 },
  });
}

function example(outcome: CohortOutcome) {
  if (outcome.kind !== "example") throw new Error(`expected an example, got excluded: ${outcome.reason}`);
  return outcome;
}

describe.runIf(existsSync(DATA))("extractFhir on the Synthea sample (real data)", () => {
  // Read in beforeAll, not while collecting: a skipped describe is still collected when the data is absent.
  let bundles: Grouped = new Map();
  let bulk: Grouped = new Map();
  beforeAll(() => {
    bundles = readBundles(`${DATA}/synthea-r4-bundles`);
    bulk = readBulk(`${DATA}/synthea-r4-bulk`);
  });

  it("gives identical values and labels from the bundles and from the bulk export, for every patient", () => {
    // Prepare: 200 bundle files, one of them the hospital's (organisations only), so 199 patients.
    expect(bundles.size).toBe(199);
    expect([...bulk.keys()].sort()).toEqual([...bundles.keys()].sort());

    // Execute
    const fromBundles = new Map([...bundles].map(([ref, rec]) => [ref, extractFhir(hypertension, rec)]));
    const fromBulk = new Map([...bulk].map(([ref, rec]) => [ref, extractFhir(hypertension, rec)]));

    // Assert
    for (const [ref, outcome] of fromBundles) expect(fromBulk.get(ref), ref).toEqual(outcome);
    const outcomes = [...fromBulk.values()];
    const examples = outcomes.flatMap((o) => (o.kind === "example" ? [o] : []));
    const positives = examples.filter((o) => o.label === 1).length;
    const excluded = outcomes.length - examples.length;
    const reasons = countBy(outcomes.flatMap((o) => (o.kind === "excluded" ? [o.reason] : [])));
    const missing = hypertension.features.map(
      (f, i) => `${f.name} ${examples.filter((e) => e.values[i] === undefined).length}`,
    );
    console.log(
      `hypertension cohort: ${examples.length} examples, ${positives} positive, ${excluded} excluded ${JSON.stringify(reasons)}; missing per feature: ${missing.join(", ")}`,
    );
    expect(positives).toBeGreaterThan(0);
    expect(examples.length - positives).toBeGreaterThan(0);
    // Blood pressure sits in components of the panel; most patients seen 2010–2015 have one.
    const systolic = examples.filter((e) => typeof e.values[3] === "number").length;
    expect(systolic).toBeGreaterThan(examples.length / 2);
    for (const e of examples) expect(e.problems).toEqual([]);
  });

  it("reads every real Observation the same by plain access as by FHIRPath", () => {
    // Prepare
    const observations = [...bulk.values()].flatMap((r) =>
      r.resources.filter((x) => x.resourceType === "Observation"),
    );
    expect(observations.length).toBe(19_800);

    // Execute / Assert
    for (const o of observations) expect(observationFactPlain(o)).toEqual(observationFactByFhirpath(o));
  });

  it("reads plausible values for the real patients", () => {
    // Execute
    const examples = [...bulk.values()]
      .map((rec) => extractFhir(hypertension, rec))
      .filter((o) => o.kind === "example");

    // Assert
    for (const e of examples) {
      const [age, sex, bmi, sbp, dbp, , smoking, pre, dia] = e.values;
      expect(age).toBeGreaterThanOrEqual(0);
      expect(["female", "male"]).toContain(sex);
      if (bmi !== undefined) expect(bmi).toBeGreaterThan(10);
      if (sbp !== undefined && dbp !== undefined) expect(sbp as number).toBeGreaterThan(dbp as number);
      if (smoking !== undefined) expect(smoking).toMatch(/^\d+$/);
      expect([0, 1]).toContain(pre);
      expect([0, 1]).toContain(dia);
    }
  });

  it("gives the same features when resources dated after the index with extreme values are added", () => {
    // Prepare: every record gets observations and conditions at or after the index, with extreme values.
    const after = "2016-01-01T00:00:00Z";
    const future = (ref: string): FhirResource[] =>
      [
        observation("39156-5", after, 999, "kg/m2"),
        observation("4548-4", "2016-06-01", 99, "%"),
        observation("72166-2", "2017", undefined, undefined, {
          valueCodeableConcept: { coding: [snomed("77176002")] },
        }),
        {
          ...observation("85354-9", "2016-01-02T10:00:00+14:00"),
          component: [
            { code: { coding: [loinc("8480-6")] }, valueQuantity: { value: 400, code: "mm[Hg]" } },
            { code: { coding: [loinc("8462-4")] }, valueQuantity: { value: 300, code: "mm[Hg]" } },
          ],
        },
        condition("15777000", "2016-01-01"),
        condition("44054006", "2016-02"),
      ].map((r) => ({ ...r, subject: { reference: ref } }));
    const base = [...bulk].map(([ref, rec]) => [ref, extractFhir(hypertension, rec)] as const);

    // Execute
    const changed = [...bulk].map(([ref, rec]) => [
      ref,
      extractFhir(hypertension, { ...rec, resources: [...rec.resources, ...future(ref)] }),
    ]);

    // Assert: features never move; a 2016-02 diabetes onset is not the label, so labels hold too.
    const before = new Map(base);
    let compared = 0;
    for (const [ref, outcome] of changed as [string, CohortOutcome][]) {
      const was = before.get(ref) as CohortOutcome;
      if (was.kind === "example" && outcome.kind === "example") {
        expect(outcome.values, ref).toEqual(was.values);
        compared += 1;
      } else expect(outcome.kind, ref).toBe(was.kind);
    }
    expect(compared).toBeGreaterThan(100);
  });
});

describe.runIf(existsSync(DATA))("extractFhir on a real bulk export without Observations", () => {
  it("leaves observation features missing and still reads age and sex", () => {
    // Prepare
    // Synthea writes 10 living patients plus earlier lives that ended in death: 13 Patient rows.
    const records = readBulk(`${DATA}/smart-bulk-10-patients`);
    expect(records.size).toBe(13);

    // Execute
    const outcomes = [...records.values()].map((rec) => extractFhir(hypertension, rec));

    // Assert
    const examples = outcomes.flatMap((o) => (o.kind === "example" ? [o] : []));
    expect(examples.length).toBeGreaterThan(0);
    for (const e of examples) {
      expect(typeof e.values[0]).toBe("number");
      expect(["female", "male"]).toContain(e.values[1]);
      expect(e.values.slice(2, 7)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    }
  });
});

describe("extractFhir rules (hand-made resources)", () => {
  it("ignores refuted and entered-in-error conditions", () => {
    // Prepare
    const s = spec([{ name: "diabetes", from: { kind: "condition", codes: [snomed("44054006")] } }]);
    const run = (v?: string) =>
      example(extractFhir(s, { patient: PATIENT, resources: [condition("44054006", "2010-03-01", v)] }))
        .values;

    // Execute / Assert
    expect(run()).toEqual([1]);
    expect(run("confirmed")).toEqual([1]);
    expect(run("refuted")).toEqual([0]);
    expect(run("entered-in-error")).toEqual([0]);
  });

  it("converts pounds to kilograms, inches to centimetres and Fahrenheit to Celsius", () => {
    // Prepare
    const s = spec([
      {
        name: "weight",
        from: { kind: "observation", codes: [loinc("29463-7")], stat: "latest", unit: "kg" },
      },
      { name: "height", from: { kind: "observation", codes: [loinc("8302-2")], stat: "latest", unit: "cm" } },
      { name: "temp", from: { kind: "observation", codes: [loinc("8310-5")], stat: "latest", unit: "Cel" } },
    ]);
    const resources = [
      observation("29463-7", "2015-05-01", 150, "[lb_av]"),
      observation("8302-2", "2015-05-01", 70, "[in_i]"),
      observation("8310-5", "2015-05-01", 98.6, "[degF]"),
    ];

    // Execute
    const { values, problems } = example(extractFhir(s, { patient: PATIENT, resources }));

    // Assert: 150 lb = 68.0388555 kg; 70 in = 177.8 cm; 98.6 °F = 37 °C.
    expect(values[0]).toBeCloseTo(68.0388555, 6);
    expect(values[1]).toBeCloseTo(177.8, 9);
    expect(values[2]).toBeCloseTo(37, 9);
    expect(problems).toEqual([]);
    expect(convertUnit(37, "Cel", "[degF]")).toBeCloseTo(98.6, 9);
    expect(convertUnit(1, "kg", "cm")).toBeUndefined();
  });

  it("leaves an unconvertible value out and reports its unit, never the record's ids or dates", () => {
    // Prepare
    const s = spec([
      { name: "weight", from: { kind: "observation", codes: [loinc("29463-7")], stat: "mean", unit: "kg" } },
    ]);
    const only = [
      observation("29463-7", "2015-05-01", 10, "[stone_av]"),
      observation("29463-7", "2015-06-01", 3, "m"),
    ];

    // Execute
    const missing = example(extractFhir(s, { patient: PATIENT, resources: only }));
    const mixed = example(
      extractFhir(s, {
        patient: PATIENT,
        resources: [...only, observation("29463-7", "2015-07-01", 70, "kg")],
      }),
    );

    // Assert
    expect(missing.values).toEqual([undefined]);
    expect(missing.problems).toEqual([
      "weight: Observation value in unit '[stone_av]' not convertible to 'kg'",
      "weight: Observation value in unit 'm' not convertible to 'kg'",
    ]);
    expect(mixed.values).toEqual([70]);
    expect(missing.problems.join(" ")).not.toMatch(/p1|2015|o-/);
  });

  it("reads blood pressure from the components of a panel", () => {
    // Prepare
    const s = spec([
      { name: "sbp", from: { kind: "observation", codes: [loinc("8480-6")], stat: "max" } },
      { name: "dbp", from: { kind: "observation", codes: [loinc("8462-4")], stat: "min" } },
      { name: "panels", from: { kind: "observation", codes: [loinc("85354-9")], stat: "count" } },
    ]);
    const panel = (at: string, sys: number, dia: number): FhirResource => ({
      ...observation("85354-9", at),
      id: `bp-${at}`,
      component: [
        { code: { coding: [loinc("8480-6")] }, valueQuantity: { value: sys, code: "mm[Hg]" } },
        { code: { coding: [loinc("8462-4")] }, valueQuantity: { value: dia, code: "mm[Hg]" } },
      ],
    });

    // Execute
    const { values } = example(
      extractFhir(s, {
        patient: PATIENT,
        resources: [panel("2015-01-01", 130, 85), panel("2015-06-01", 120, 75)],
      }),
    );

    // Assert
    expect(values).toEqual([130, 75, 2]);
  });

  it("takes values strictly before the index, and back to index − windowDays inclusive", () => {
    // Prepare: index 2016-01-01T00:00Z; a 10-day window starts 2015-12-22T00:00Z.
    const feature = (windowDays?: number) => ({
      kind: "observation",
      codes: [loinc("29463-7")],
      stat: "count",
      windowDays,
    });
    const s = spec([
      { name: "all", from: feature() },
      { name: "window", from: feature(10) },
    ]);
    const resources = [
      observation("29463-7", "2015-12-21T23:59:59Z", 1, "kg"), // one second before the window
      observation("29463-7", "2015-12-22T00:00:00Z", 2, "kg"), // the window's first instant
      observation("29463-7", "2015-12-31T23:59:59Z", 3, "kg"), // the last second before the index
      observation("29463-7", "2015-12-31", 4, "kg"), // a whole day ending at the index
      observation("29463-7", "2016-01-01T00:00:00Z", 5, "kg"), // the index instant: not before it
      observation("29463-7", "2015-12-31T23:30:00-01:00", 6, "kg"), // 00:30 UTC on the index day
      observation("29463-7", "2015", 7, "kg"), // the year 2015 ends at the index
      observation("29463-7", "2016", 8, "kg"), // could be after the index
    ];

    // Execute
    const { values } = example(extractFhir(s, { patient: PATIENT, resources }));

    // Assert
    expect(values).toEqual([5, 3]);
  });

  it("reads age in whole years at the index and sex as a level", () => {
    // Prepare
    const s = spec([
      { name: "age", from: { kind: "age" } },
      { name: "sex", from: { kind: "sex" } },
    ]);
    const at = (birthDate: string, gender?: string) =>
      example(
        extractFhir(s, { patient: { resourceType: "Patient", id: "x", birthDate, gender }, resources: [] }),
      ).values;

    // Execute / Assert: index 2016-01-01.
    expect(at("1970-01-01", "male")).toEqual([46, "male"]);
    expect(at("1970-01-02", "other")).toEqual([45, "other"]);
    expect(at("1970", "unknown")).toEqual([46, "unknown"]); // a year alone is read as its first day
    expect(at("1970-06")).toEqual([45, undefined]);
    expect(
      extractFhir(s, { patient: { resourceType: "Patient", birthDate: "2016-01-02" }, resources: [] }),
    ).toEqual({
      kind: "excluded",
      reason: "born after the index date",
    });
  });

  it("labels an event in [index, index + horizon) and excludes prior cases when asked", () => {
    // Prepare
    const label = (excludePrior?: boolean) =>
      parseCohortSpec({
        indexDate: { kind: "fixed", date: "2016-01-01" },
        features: [{ name: "age", from: { kind: "age" } }],
        label: { kind: "condition", codes: [snomed("38341003")], horizonDays: 10, excludePrior },
      });
    const run = (onsets: string[], excludePrior?: boolean) =>
      extractFhir(label(excludePrior), {
        patient: PATIENT,
        resources: onsets.map((o) => condition("38341003", o)),
      });
    const labelOf = (o: CohortOutcome) => (o.kind === "example" ? o.label : o.reason);

    // Execute / Assert
    expect(labelOf(run(["2016-01-01"]))).toBe(1);
    expect(labelOf(run(["2016-01-10T23:59:59Z"]))).toBe(1);
    expect(labelOf(run(["2016-01-11"]))).toBe(0);
    expect(labelOf(run(["2015-12-31"]))).toBe(0);
    expect(labelOf(run(["2015-12-31", "2016-01-02"], true))).toBe(
      "label condition already present before the index date",
    );
  });

  it("labels an observation beyond a threshold, in the label's unit", () => {
    // Prepare
    const s = parseCohortSpec({
      indexDate: { kind: "fixed", date: "2016-01-01" },
      features: [{ name: "age", from: { kind: "age" } }],
      label: { kind: "observation", codes: [loinc("4548-4")], horizonDays: 365, above: 6.5, unit: "%" },
    });
    const run = (value: number, at = "2016-03-01") =>
      example(extractFhir(s, { patient: PATIENT, resources: [observation("4548-4", at, value, "%")] })).label;

    // Execute / Assert
    expect(run(7)).toBe(1);
    expect(run(6.5)).toBe(0);
    expect(run(9, "2015-12-01")).toBe(0);
  });

  it("takes the index from the first qualifying encounter, and excludes patients without one", () => {
    // Prepare
    const s = parseCohortSpec({
      indexDate: { kind: "first-encounter", codes: [snomed("185349003")], onOrAfter: "2015-01-01" },
      features: [
        { name: "weight", from: { kind: "observation", codes: [loinc("29463-7")], stat: "latest" } },
      ],
      label: { kind: "condition", codes: [snomed("38341003")], horizonDays: 30 },
    });
    const encounter = (start: string, code: string): FhirResource => ({
      resourceType: "Encounter",
      id: `e-${start}`,
      status: "finished",
      subject,
      type: [{ coding: [snomed(code)] }],
      period: { start },
    });
    const resources = [
      encounter("2014-05-01T09:00:00Z", "185349003"), // before onOrAfter
      encounter("2015-02-01T09:00:00Z", "999999"), // another type
      encounter("2015-03-01T09:00:30.500Z", "185349003"), // the index
      observation("29463-7", "2015-02-15", 80, "kg"),
      observation("29463-7", "2015-03-01T09:00:30.500Z", 90, "kg"), // at the index instant: not before it
      observation("29463-7", "2015-03-01T09:00:30Z", 95, "kg"), // a whole second that holds the index
      condition("38341003", "2015-03-20"),
    ];

    // Execute
    const outcome = extractFhir(s, { patient: PATIENT, resources });
    const none = extractFhir(s, { patient: PATIENT, resources: resources.slice(0, 2) });

    // Assert
    expect(outcome).toEqual({ kind: "example", values: [80], label: 1, problems: [] });
    expect(none).toEqual({ kind: "excluded", reason: "no qualifying encounter for the index date" });
  });

  it("reads edge-case Observations the same by plain access as by FHIRPath", () => {
    // Prepare: the other choice types, missing parts, voided statuses and a single value where a list goes.
    const base = observation("29463-7", "2015-05-01", 70, "kg");
    const { effectiveDateTime: _, ...timeless } = base;
    const cases: FhirResource[] = [
      { ...timeless, effectivePeriod: { start: "2015-05-01T10:00:00+02:00", end: "2015-05-02" } },
      { ...timeless, effectiveInstant: "2015-05-01T10:00:00.123456Z" },
      { ...timeless, issued: "2015-05-03T00:00:00Z" },
      { ...timeless, effectiveTiming: { event: ["2015-05-01"] } },
      timeless,
      { ...base, status: "entered-in-error" },
      { ...base, status: "cancelled" },
      { ...base, valueQuantity: { value: 70, unit: "kilograms" } },
      { ...base, valueQuantity: { unit: "kg" } },
      { ...base, valueQuantity: undefined, valueString: "seventy" },
      {
        ...base,
        valueQuantity: undefined,
        valueCodeableConcept: { coding: [{ display: "x" }, snomed("8517006")] },
      },
      { ...base, code: { coding: loinc("29463-7") } },
      {
        ...base,
        component: [{ code: { coding: [loinc("8480-6")] } }, { valueQuantity: { value: 1, code: "1" } }],
      },
      { ...base, effectiveDateTime: "2015-02-30" },
    ];

    // Execute / Assert
    for (const o of cases) expect(observationFactPlain(o)).toEqual(observationFactByFhirpath(o));
  });

  it("finds the patient of a resource by its subject or patient reference", () => {
    expect(patientRef({ resourceType: "Observation", subject: { reference: "Patient/abc" } })).toBe(
      "Patient/abc",
    );
    expect(
      patientRef({ resourceType: "Claim", patient: { reference: "https://x.org/fhir/Patient/abc" } }),
    ).toBe("Patient/abc");
    expect(patientRef({ resourceType: "Patient", id: "abc" })).toBe("Patient/abc");
    expect(patientRef({ resourceType: "Observation", subject: { reference: "Group/g" } })).toBeUndefined();
    expect(
      patientRef({ resourceType: "Observation", subject: { reference: "urn:uuid:abc" } }),
    ).toBeUndefined();
  });
});

describe("parseCohortSpec", () => {
  it("names the path of every bad field", () => {
    // Prepare
    const bad = {
      indexDate: { kind: "fixed", date: "2016-02-30" },
      features: [
        { name: "bmi", from: { kind: "observation", codes: [], stat: "median" } },
        { name: "age", from: { kind: "age", extra: 1 } },
      ],
      label: {
        kind: "condition",
        codes: [{ system: "http://snomed.info/sct", code: "38341003" }],
        horizonDays: -1,
      },
    };

    // Execute
    let error: unknown;
    try {
      parseCohortSpec(bad);
    } catch (e) {
      error = e;
    }

    // Assert
    expect(error).toBeInstanceOf(CohortSpecError);
    const message = (error as Error).message;
    expect(message).toContain("indexDate.date: is not a real calendar day");
    expect(message).toContain("features.0.from.codes: must list at least one code");
    expect(message).toContain("features.0.from.stat");
    expect(message).toContain("features.1.from");
    expect(message).toContain("label.horizonDays");
  });

  it("refuses duplicate feature names", () => {
    const twice = { name: "age", from: { kind: "age" } };
    expect(() => spec([twice, twice])).toThrow(/features: feature names must be unique/);
  });
});

function countBy(items: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}
