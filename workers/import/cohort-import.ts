import { type Facts, sortFacts } from "../../src/core/cohort/history";
import { type CohortOutcome, outcomeFromFacts } from "../../src/core/cohort/outcome";
import { Problems } from "../../src/core/cohort/problems";
import type { CohortSpec } from "../../src/core/cohort/spec";
import type { Span } from "../../src/core/cohort/time";
import type { FedwardDb, StagingRow } from "../../src/store/db";
import { Report, stageFhir, stageOmop } from "./cohort-stage";
import { omopTableOf } from "./omop-read";
import { ImportError } from "./parser";
import {
  deleteStaging,
  PatientKeys,
  StagingWriter,
  stagedRange,
  sweepStaging,
  unshift,
  unshiftPatient,
  unshiftSpan,
  withImportLock,
} from "./staging";

/**
 * A cohort import (issue 4) in two passes, so exports of any size never sit in memory grouped by patient.
 * Pass 1 streams each file and turns every resource (FHIR) or row (OMOP) into a fact at once, keeps the
 * facts the spec can use, and stages them in IndexedDB under a sequential patient key, times shifted by a
 * secret per patient and ids hashed (staging.ts). Pass 2 reads the facts back one key range at a time,
 * undoes the shift in memory and derives each patient's outcome. The staged rows are deleted at the end,
 * on failure and on abort; rows of imports killed earlier are swept at the start.
 */

export interface CohortFileReport {
  name: string;
  bytes: number;
  resources: number;
  problems: number;
  kind: "fhir" | "omop" | "unsupported";
}

export interface CohortImportResult {
  patients: number;
  examples: number;
  excluded: Record<string, number>;
  problems: { file: string; line?: number; message: string }[];
  problemCount: number;
  files: CohortFileReport[];
}

export interface CohortProgress {
  file: string;
  fileIndex: number;
  files: number;
  bytesRead: number;
  totalBytes: number;
  phase: "reading" | "deriving";
  patients: number;
}

export interface CohortImportOptions {
  signal?: AbortSignal;
  onProgress?(p: CohortProgress): void;
}

type NamedFile = Blob & { name: string };
type OnPatient = (holdoutKey: number, outcome: CohortOutcome) => Promise<void> | void;

/** Patients read back per IndexedDB range query in pass 2. */
const PATIENTS_PER_READ = 64;

export async function importCohort(
  files: NamedFile[],
  spec: CohortSpec,
  db: FedwardDb,
  onPatient: OnPatient,
  options: CohortImportOptions = {},
): Promise<CohortImportResult> {
  const omop = files.filter((f) => omopTableOf(f.name) !== undefined);
  if (omop.length > 0 && omop.length < files.length) {
    const fhir = files.find((f) => omopTableOf(f.name) === undefined)?.name;
    throw new ImportError(
      `${omop[0]?.name} is an OMOP table (CSV) and ${fhir} is not; one import reads either FHIR files or ` +
        "OMOP CDM tables. Import the FHIR files and the OMOP tables separately.",
    );
  }
  const importId = crypto.randomUUID();
  return withImportLock(importId, async () => {
    let failed = false;
    try {
      await sweepStaging(db, importId);
      return await run(files, omop.length > 0, spec, db, onPatient, options, importId);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // A failed delete must not hide the error that ended the import (IndexedDB full, say).
      await deleteStaging(db, importId).catch((error: unknown) => {
        if (!failed) throw error;
      });
    }
  });
}

async function run(
  files: NamedFile[],
  isOmop: boolean,
  spec: CohortSpec,
  db: FedwardDb,
  onPatient: OnPatient,
  options: CohortImportOptions,
  importId: string,
): Promise<CohortImportResult> {
  const keys = new PatientKeys();
  const writer = new StagingWriter(db, importId, keys);
  const report = new Report();
  const totalBytes = files.reduce((sum, f) => sum + f.size, 0);
  let before = 0;
  try {
    await stageAll();
  } catch (error) {
    await writer.settle();
    throw error;
  }
  return derive(db, importId, spec, keys, report, onPatient, options, totalBytes);

  async function stageAll() {
    for (const [fileIndex, file] of files.entries()) {
      const onProgress = (bytesRead: number) =>
        options.onProgress?.({
          file: file.name,
          fileIndex,
          files: files.length,
          bytesRead: before + bytesRead,
          totalBytes,
          phase: "reading",
          patients: keys.size,
        });
      const read = { signal: options.signal, onProgress };
      const entry = report.file(file);
      if (isOmop) await stageOmop(file, spec, keys, writer, entry, report, read);
      else await stageFhir(file, spec, keys, writer, entry, report, read);
      before += file.size;
    }
    await writer.flush();
  }
}

// --- Pass 2 ---

async function derive(
  db: FedwardDb,
  importId: string,
  spec: CohortSpec,
  keys: PatientKeys,
  report: Report,
  onPatient: OnPatient,
  options: CohortImportOptions,
  totalBytes: number,
): Promise<CohortImportResult> {
  const excluded: Record<string, number> = {};
  let patients = 0;
  let examples = 0;
  let missing = 0;
  for (let from = 0; from < keys.size; from += PATIENTS_PER_READ) {
    options.signal?.throwIfAborted();
    const to = Math.min(from + PATIENTS_PER_READ, keys.size);
    const rows = await stagedRange(db, importId, from, to);
    let at = 0;
    for (let key = from; key < to; key++) {
      const start = at;
      while (at < rows.length && (rows[at] as StagingRow).patient === key) at++;
      if (!keys.wasSeen(key)) {
        missing++;
        continue;
      }
      const problems = new Problems();
      const facts = rebuild(rows.slice(start, at), keys.shiftMs(key), problems);
      const outcome = outcomeFromFacts(spec, sortFacts(facts), problems);
      patients++;
      if (outcome.kind === "example") examples++;
      else excluded[outcome.reason] = (excluded[outcome.reason] ?? 0) + 1;
      await onPatient(keys.holdoutKey(key), outcome);
    }
    options.onProgress?.({
      file: "",
      fileIndex: report.files.length,
      files: report.files.length,
      bytesRead: totalBytes,
      totalBytes,
      phase: "deriving",
      patients,
    });
  }
  if (missing > 0)
    report.add(
      {
        file: "",
        message: `${missing} patients are referred to by resources or rows but have no Patient resource (PERSON row) in the chosen files; their records were left out. Choose the Patient (PERSON) file too.`,
      },
      missing,
    );
  return {
    patients,
    examples,
    excluded,
    problems: report.problems,
    problemCount: report.problemCount,
    files: report.files,
  };
}

/** One patient's staged rows back to facts, the shift undone; problems re-added in the engine's order. */
function rebuild(rows: StagingRow[], by: number, problems: Problems): Facts {
  const facts: Facts = {
    patient: { birth: undefined, gender: undefined, death: undefined },
    observations: [],
    conditions: [],
    encounters: [],
  };
  let death: Span | undefined;
  const messages: { rank: number; seq: number; message: string }[] = [];
  let patientRead = false;
  for (const row of rows) {
    if (row.kind === "patient" && !patientRead) {
      facts.patient = unshiftPatient(row.fact, by);
      patientRead = true;
    } else if (row.kind === "death") death ??= unshiftSpan(row.death, by);
    else if (row.kind === "observation") facts.observations.push(unshift(row.fact, by));
    else if (row.kind === "condition") facts.conditions.push(unshift(row.fact, by));
    else if (row.kind === "encounter") facts.encounters.push(unshift(row.fact, by));
    else if (row.kind === "problem") messages.push(row);
  }
  if (death !== undefined && facts.patient.death === undefined) facts.patient = { ...facts.patient, death };
  messages.sort((a, b) => a.rank - b.rank || a.seq - b.seq);
  for (const m of messages) problems.add(m.message);
  return facts;
}
