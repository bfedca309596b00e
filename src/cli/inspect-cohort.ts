import { openAsBlob, readFileSync } from "node:fs";
import { basename } from "node:path";
import { gunzipSync } from "node:zlib";
import Papa from "papaparse";
import { type FhirProblem, readFhirFile } from "../../workers/import/fhir-read";
import { extractFhir, type FhirResource, patientRef } from "../core/cohort/fhir";
import { extractOmop, groupOmopByPerson, type OmopRow } from "../core/cohort/omop";
import type { CohortOutcome } from "../core/cohort/outcome";
import { encodeFeatures } from "../core/features";
import type { Plan } from "../core/plan";
import { cohortSpecOf } from "../core/plan";

/**
 * `fedward inspect` for a cohort plan: reads FHIR (NDJSON, Bundles) or OMOP CDM tables with the same
 * readers and cohort engine the site's import worker uses, and reports what the plan would get. A dry run
 * on a data engineer's machine: it groups the export by patient in memory (the browser stages it in
 * IndexedDB instead), so it suits exports up to a few gigabytes of relevant resources.
 */
export interface CohortReport {
  text: string;
  examples: number;
  positives: number;
  skipped: number;
  errors: number;
}

/** FHIR is never CSV: every .csv file of a cohort export is an OMOP table. */
const OMOP_FILE = /\.csv(\.gz)?$/i;
/** The tables the cohort engine reads; others (DRUG_EXPOSURE, …) are listed as not used. */
const OMOP_TABLE =
  /^(person|death|measurement|condition_occurrence|observation|visit_occurrence)\.csv(\.gz)?$/i;
const SHOWN = 5;

export async function inspectCohort(files: string[], plan: Plan): Promise<CohortReport> {
  const omop = files.filter((f) => OMOP_FILE.test(basename(f)));
  const fhir = files.filter((f) => !OMOP_FILE.test(basename(f)));
  const lines: string[] = [];
  let errors = 0;
  let outcomes: CohortOutcome[];
  if (omop.length > 0 && fhir.length > 0) {
    return {
      text: "error: FHIR files and OMOP tables were given together; inspect one export at a time.\n",
      examples: 0,
      positives: 0,
      skipped: 0,
      errors: 1,
    };
  }
  if (omop.length > 0) {
    outcomes = readOmop(omop, plan, lines);
  } else {
    const read = await readFhir(fhir, plan, lines);
    outcomes = read.outcomes;
    errors += read.errors;
  }
  let examples = 0;
  let positives = 0;
  let skipped = 0;
  const excluded = new Map<string, number>();
  const problems = new Map<string, number>();
  for (const outcome of outcomes) {
    if (outcome.kind === "excluded") {
      excluded.set(outcome.reason, (excluded.get(outcome.reason) ?? 0) + 1);
      continue;
    }
    for (const p of outcome.problems) problems.set(p, (problems.get(p) ?? 0) + 1);
    const encoded = encodeFeatures(plan, outcome.values);
    if (Array.isArray(encoded)) {
      skipped++;
      for (const { feature, message } of encoded) {
        const key = `${plan.features[feature]?.name}: ${message}`;
        problems.set(key, (problems.get(key) ?? 0) + 1);
      }
      continue;
    }
    examples++;
    positives += outcome.label;
  }
  lines.push(
    `patients=${outcomes.length} examples=${examples} excluded=${outcomes.length - examples - skipped} skipped=${skipped}`,
  );
  for (const [reason, n] of excluded) lines.push(`  excluded: ${reason}: ${n}`);
  for (const [problem, n] of [...problems].slice(0, 20)) lines.push(`  problem: ${problem}: ${n}`);
  return { text: `${lines.join("\n")}\n`, examples, positives, skipped, errors };
}

async function readFhir(files: string[], plan: Plan, lines: string[]) {
  const spec = cohortSpecOf(plan);
  if (!spec) throw new Error("inspectCohort was given a CSV plan; this is a bug in fedward.");
  const patients = new Map<string, FhirResource>();
  const byPatient = new Map<string, FhirResource[]>();
  let errors = 0;
  for (const path of files) {
    const problems: FhirProblem[] = [];
    let count = 0;
    const file = new File([await openAsBlob(path)], basename(path));
    for await (const r of readFhirFile(file, (p) => problems.push(p))) {
      count++;
      const ref = patientRef(r);
      if (ref === undefined) continue;
      if (r.resourceType === "Patient") patients.set(ref, r);
      else {
        const list = byPatient.get(ref);
        if (list) list.push(r);
        else byPatient.set(ref, [r]);
      }
    }
    if (count === 0 && problems.length > 0) errors++;
    lines.push(`${path}: resources=${count} problems=${problems.length}`);
    for (const p of problems.slice(0, SHOWN)) {
      const where =
        p.line !== undefined ? `line ${p.line}` : p.byteOffset !== undefined ? `byte ${p.byteOffset}` : "";
      lines.push(`  ${where}${where ? ": " : ""}${p.message}`);
    }
  }
  const orphans = [...byPatient.keys()].filter((ref) => !patients.has(ref)).length;
  if (orphans > 0) lines.push(`resources of ${orphans} patients with no Patient resource were left out`);
  const outcomes = [...patients].map(([ref, patient]) =>
    extractFhir(spec, { patient, resources: byPatient.get(ref) ?? [] }),
  );
  return { outcomes, errors };
}

function readOmop(files: string[], plan: Plan, lines: string[]): CohortOutcome[] {
  const spec = cohortSpecOf(plan);
  if (!spec) throw new Error("inspectCohort was given a CSV plan; this is a bug in fedward.");
  const tables = new Map<string, OmopRow[]>();
  for (const path of files) {
    const name = (OMOP_TABLE.exec(basename(path))?.[1] ?? "").toLowerCase();
    if (name === "") {
      lines.push(`${path}: not a table the cohort engine reads; not used`);
      continue;
    }
    const bytes = gunzipIfNeeded(path);
    const parsed = Papa.parse<OmopRow>(bytes, { header: true, skipEmptyLines: true });
    tables.set(name, parsed.data);
    lines.push(`${path}: ${name.toUpperCase()} rows=${parsed.data.length} problems=${parsed.errors.length}`);
  }
  const persons = groupOmopByPerson((table) => tables.get(table.toLowerCase()) ?? []);
  return [...persons.values()].map((person) => extractOmop(spec, person));
}

/** A table is read whole here (a dry run); the site's import streams it. */
function gunzipIfNeeded(path: string): string {
  const bytes = readFileSync(path);
  const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
  return (gz ? gunzipSync(bytes) : bytes).toString("utf8");
}
