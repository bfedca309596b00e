import { codeMatcher } from "../../src/core/cohort/codes";
import { conditionFact, encounterFact, type FhirResource, patientFact } from "../../src/core/cohort/facts";
import { patientRef } from "../../src/core/cohort/fhir";
import { observationFactPlain } from "../../src/core/cohort/observation-plain";
import { type OmopRow, omopRowFact, personId, specSystems } from "../../src/core/cohort/omop";
import { Problems } from "../../src/core/cohort/problems";
import type { Coding, CohortSpec } from "../../src/core/cohort/spec";
import { MAX_PROBLEMS, type StagedFact } from "../../src/store/db";
import type { CohortFileReport, CohortImportResult } from "./cohort-import";
import { readFhirFile } from "./fhir-read";
import { type OmopTable, omopTableOf, readOmopTable } from "./omop-read";
import type { PatientKeys, StagingWriter } from "./staging";

/**
 * Pass 1 of a cohort import (cohort-import.ts): one file streamed, each FHIR resource or OMOP row read
 * into a fact by the cohort engine's own readers at once, and the facts the spec can use staged.
 */

type NamedFile = Blob & { name: string };

export class Report {
  readonly files: CohortFileReport[] = [];
  readonly problems: CohortImportResult["problems"] = [];
  problemCount = 0;

  file(file: NamedFile): CohortFileReport {
    const entry: CohortFileReport = {
      name: file.name,
      bytes: file.size,
      resources: 0,
      problems: 0,
      kind: "unsupported",
    };
    this.files.push(entry);
    return entry;
  }

  add(problem: { file: string; line?: number; message: string }, count = 1, entry?: CohortFileReport): void {
    this.problemCount += count;
    if (entry !== undefined) entry.problems += count;
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
  }
}

export interface ReadContext {
  signal: AbortSignal | undefined;
  onProgress(bytesRead: number): void;
}

/** Which facts a spec can use, so only those are staged. */
function relevance(spec: CohortSpec) {
  const observationCodes: Coding[] = [];
  const conditionCodes: Coding[] = [];
  for (const feature of spec.features) {
    const from = feature.from;
    if (from.kind === "observation" || from.kind === "observation-code") observationCodes.push(...from.codes);
    else if (from.kind === "condition") conditionCodes.push(...from.codes);
  }
  (spec.label.kind === "condition" ? conditionCodes : observationCodes).push(...spec.label.codes);
  const observation = codeMatcher(observationCodes);
  const condition = codeMatcher(conditionCodes);
  const index = spec.indexDate;
  const encounter =
    index.kind !== "first-encounter"
      ? () => false
      : index.codes === undefined
        ? () => true
        : codeMatcher(index.codes);
  return {
    observation: (f: { codes: string[]; components: { codes: string[] }[] }) =>
      observation(f.codes) || f.components.some((c) => observation(c.codes)),
    condition: (f: { codes: string[] }) => condition(f.codes),
    encounter: (f: { codes: string[] }) => encounter(f.codes),
  };
}

// --- FHIR ---

const FACT_TYPES = new Set(["Observation", "Condition", "Encounter"]);

export async function stageFhir(
  file: NamedFile,
  spec: CohortSpec,
  keys: PatientKeys,
  writer: StagingWriter,
  entry: CohortFileReport,
  report: Report,
  read: ReadContext,
): Promise<void> {
  const wanted = relevance(spec);
  let problems = 0;
  let noPatient = 0;
  let duplicates = 0;
  const onProblem = (p: { file: string; line?: number; message: string }) => {
    problems++;
    report.add(
      { file: p.file, ...(p.line === undefined ? {} : { line: p.line }), message: p.message },
      1,
      entry,
    );
  };
  const options = { ...read, wantType: (type: string) => type === "Patient" || FACT_TYPES.has(type) };
  for await (const r of readFhirFile(file, onProblem, options) as AsyncIterable<FhirResource>) {
    entry.kind = "fhir";
    entry.resources++;
    const isPatient = r.resourceType === "Patient";
    if (!isPatient && !FACT_TYPES.has(r.resourceType)) continue;
    const ref = patientRef(r);
    if (ref === undefined) {
      noPatient++;
      continue;
    }
    const key = keys.keyOf(ref);
    if (isPatient) {
      if (keys.markSeen(key)) await writer.add(key, { kind: "patient", fact: patientFact(r) });
      else duplicates++;
      continue;
    }
    const fact =
      r.resourceType === "Observation"
        ? observationFactPlain(r)
        : r.resourceType === "Condition"
          ? conditionFact(r)
          : encounterFact(r);
    if (fact === "void") continue;
    // Counted whether or not the spec uses the resource, as the engine counts it (fhir.ts readFacts).
    if (fact === undefined) {
      await writer.add(key, {
        kind: "problem",
        message: `${r.resourceType} without a readable date was ignored`,
        rank: 0,
      });
      continue;
    }
    const staged = stagedFhir(r.resourceType, fact, wanted);
    if (staged !== undefined) await writer.add(key, staged);
  }
  if (entry.kind === "unsupported" && problems === 0) entry.kind = "fhir"; // an empty NDJSON file
  if (noPatient > 0)
    report.add(
      {
        file: file.name,
        message: `${file.name}: ${noPatient} Observation, Condition or Encounter resources name no patient (subject or patient) and were skipped.`,
      },
      noPatient,
      entry,
    );
  if (duplicates > 0)
    report.add(
      {
        file: file.name,
        message: `${file.name}: ${duplicates} Patient resources had been read before (the same patient chosen twice?); the later copies were ignored.`,
      },
      duplicates,
      entry,
    );
}

function stagedFhir(
  type: string,
  fact: Exclude<
    ReturnType<typeof observationFactPlain | typeof conditionFact | typeof encounterFact>,
    "void" | undefined
  >,
  wanted: ReturnType<typeof relevance>,
): StagedFact | undefined {
  if (type === "Observation") {
    const f = fact as Extract<StagedFact, { kind: "observation" }>["fact"];
    return wanted.observation(f) ? { kind: "observation", fact: f } : undefined;
  }
  if (type === "Condition")
    return wanted.condition(fact)
      ? { kind: "condition", fact: fact as Extract<StagedFact, { kind: "condition" }>["fact"] }
      : undefined;
  return wanted.encounter(fact) ? { kind: "encounter", fact } : undefined;
}

// --- OMOP ---

/** A valid person for reading one row at a time through omopFacts without person problems. */
// omopFacts reads measurements, observations, conditions, visits, then the person and death: ranks keep
// the problems it reports in that order, whatever order the files come in.
const RANK: Record<OmopTable, number> = {
  MEASUREMENT: 0,
  OBSERVATION: 1,
  CONDITION_OCCURRENCE: 2,
  VISIT_OCCURRENCE: 3,
  PERSON: 4,
  DEATH: 5,
  OBSERVATION_PERIOD: 6,
};

/** Collects a row's problem messages in order (omopFacts reports into a Problems). */
class Collected extends Problems {
  messages: string[] = [];
  override add(message: string): void {
    this.messages.push(message);
  }
}

export async function stageOmop(
  file: NamedFile,
  spec: CohortSpec,
  keys: PatientKeys,
  writer: StagingWriter,
  entry: CohortFileReport,
  report: Report,
  read: ReadContext,
): Promise<void> {
  const table = omopTableOf(file.name);
  if (table === "other" || table === undefined || table === "OBSERVATION_PERIOD") {
    // OBSERVATION_PERIOD is recognised but the cohort engine reads nothing from it yet.
    if (table === "OBSERVATION_PERIOD") entry.kind = "omop";
    else
      report.add(
        {
          file: file.name,
          message: `${file.name} is not an OMOP table a cohort reads (PERSON, DEATH, MEASUREMENT, OBSERVATION, CONDITION_OCCURRENCE, VISIT_OCCURRENCE); it was skipped.`,
        },
        1,
        entry,
      );
    return;
  }
  entry.kind = "omop";
  const wanted = relevance(spec);
  const systems = specSystems(spec);
  let noPerson = 0;
  let duplicates = 0;
  const onProblem = (record: number | undefined, message: string) =>
    report.add(
      {
        file: file.name,
        ...(record === undefined ? {} : { line: record }),
        message: `${file.name}: ${message}`,
      },
      1,
      entry,
    );
  for await (const { row } of readOmopTable(file, onProblem, read)) {
    entry.resources++;
    const id = personId(row);
    if (id === undefined) {
      noPerson++;
      continue;
    }
    const key = keys.keyOf(id);
    if (table === "PERSON" && !keys.markSeen(key)) {
      duplicates++;
      continue;
    }
    const problems = new Collected();
    const staged = omopRowFacts(table, row, problems, systems, wanted);
    for (const message of problems.messages)
      await writer.add(key, { kind: "problem", message, rank: RANK[table] });
    for (const fact of staged) await writer.add(key, fact);
  }
  if (noPerson > 0)
    report.add(
      { file: file.name, message: `${file.name}: ${noPerson} rows have no person_id and were skipped.` },
      noPerson,
      entry,
    );
  if (duplicates > 0)
    report.add(
      {
        file: file.name,
        message: `${file.name}: ${duplicates} rows repeat a person_id read before; the later rows were ignored.`,
      },
      duplicates,
      entry,
    );
}

/** One row's staged facts, read by the engine's own per-row reader; only what the spec can use is kept. */
function omopRowFacts(
  table: Exclude<OmopTable, "OBSERVATION_PERIOD">,
  row: OmopRow,
  problems: Problems,
  systems: readonly string[],
  wanted: ReturnType<typeof relevance>,
): StagedFact[] {
  const read = omopRowFact(table, row, problems, systems);
  if (read === undefined) return [];
  switch (read.kind) {
    case "patient":
      return [{ kind: "patient", fact: read.fact }];
    case "death":
      return [{ kind: "death", death: read.death }];
    case "observation":
      return wanted.observation(read.fact) ? [{ kind: "observation", fact: read.fact }] : [];
    case "condition":
      return wanted.condition(read.fact) ? [{ kind: "condition", fact: read.fact }] : [];
    case "encounter":
      return wanted.encounter(read.fact) ? [{ kind: "encounter", fact: read.fact }] : [];
  }
}
