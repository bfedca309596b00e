import { OMOP_CONCEPT_SYSTEM } from "../../src/core/cohort/omop";
import { parseCohortSpec } from "../../src/core/cohort/spec";

/** Cohort specs shared by the cohort engine's tests, the import pipeline's tests and its benchmark. */

export const LOINC = "http://loinc.org";
export const SNOMED = "http://snomed.info/sct";
export const loinc = (code: string) => ({ system: LOINC, code });
export const snomed = (code: string) => ({ system: SNOMED, code });
export const concept = (code: string) => ({ system: OMOP_CONCEPT_SYSTEM, code });

/** Age, sex and the latest vitals and HbA1c before the index date: the first features of both specs. */
const vitals = [
  { name: "age", from: { kind: "age" } },
  { name: "sex", from: { kind: "sex" } },
  { name: "bmi", from: { kind: "observation", codes: [loinc("39156-5")], stat: "latest", unit: "kg/m2" } },
  {
    name: "systolic",
    from: { kind: "observation", codes: [loinc("8480-6")], stat: "latest", unit: "mm[Hg]" },
  },
  {
    name: "diastolic",
    from: { kind: "observation", codes: [loinc("8462-4")], stat: "latest", unit: "mm[Hg]" },
  },
  { name: "hba1c", from: { kind: "observation", codes: [loinc("4548-4")], stat: "latest", unit: "%" } },
];

/** Incident hypertension on the Synthea FHIR sample, from 2016-01-01, with the usual risk factors. */
export const hypertension = parseCohortSpec({
  indexDate: { kind: "fixed", date: "2016-01-01" },
  features: [
    ...vitals,
    { name: "smoking", from: { kind: "observation-code", codes: [loinc("72166-2")] } },
    { name: "prediabetes", from: { kind: "condition", codes: [snomed("15777000")] } },
    { name: "diabetes", from: { kind: "condition", codes: [snomed("44054006")] } },
  ],
  label: { kind: "condition", codes: [snomed("38341003")], horizonDays: 1096, excludePrior: true },
});

export const OMOP_INDEX = "2018-01-01";

/**
 * A risk model written against codes the Synthea OMOP export holds: LOINC vitals and HbA1c as
 * measurement_source_value, SNOMED hypertension as condition_source_value (Synthea writes essential
 * hypertension 59621000; 38341003 is listed too, as a clinician would, though this export has none), and
 * viral sinusitis, the most frequent disorder dated 2018–2020, as the label. systolicById asks for the same
 * measurement by its OMOP concept id, so the real data checks concept matching against source matching.
 */
export const omopSpec = parseCohortSpec({
  indexDate: { kind: "fixed", date: OMOP_INDEX },
  features: [
    ...vitals,
    { name: "bpCount", from: { kind: "observation", codes: [loinc("8480-6")], stat: "count" } },
    { name: "hypertension", from: { kind: "condition", codes: [snomed("38341003"), snomed("59621000")] } },
    {
      name: "systolicById",
      from: { kind: "observation", codes: [concept("3004249")], stat: "latest", unit: "mm[Hg]" },
    },
  ],
  label: { kind: "condition", codes: [snomed("444814009")], horizonDays: 1096 },
});
