// fake-indexeddb stands in for the browser's IndexedDB in this unit test; the staged rows it sees are the
// ones the import worker would write.
import "fake-indexeddb/auto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import Papa from "papaparse";
import { describe, expect, it } from "vitest";
import {
  type CohortOutcome,
  extractFhir,
  type FhirResource,
  patientRef,
} from "../../../src/core/cohort/fhir";
import { extractOmop, groupOmopByPerson, type OmopRow } from "../../../src/core/cohort/omop";
import { type CohortSpec, parseCohortSpec } from "../../../src/core/cohort/spec";
import type { FedwardDb, StagingRow } from "../../../src/store/db";
import {
  type CohortImportResult,
  type CohortProgress,
  importCohort,
} from "../../../workers/import/cohort-import";
import { omopTableOf, readOmopTable } from "../../../workers/import/omop-read";
import { fnv1a32 } from "../../../workers/import/staging";
import { hypertension, omopSpec } from "../../support/cohort-specs";
import { freshDb } from "./support";

const DATA = "../shared/data";
const BULK = `${DATA}/fhir/synthea-r4-bulk`;
const BUNDLES = `${DATA}/fhir/synthea-r4-bundles`;
const SMALL = `${DATA}/fhir/smart-bulk-10-patients`;
const OMOP = `${DATA}/omop/synthea27nj-cdm54`;
const HAVE_FHIR = existsSync(BULK) && existsSync(BUNDLES) && existsSync(SMALL);
const HAVE_OMOP = existsSync(OMOP);
if (!HAVE_FHIR) console.warn("cohort-import FHIR real-data tests skipped: ../shared/data/fhir absent");
if (!HAVE_OMOP) console.warn("cohort-import OMOP real-data tests skipped: ../shared/data/omop absent");

/** The same spec indexed at each patient's first encounter, so encounters are staged too. */
const firstEncounter = parseCohortSpec({
  ...hypertension,
  indexDate: { kind: "first-encounter", onOrAfter: "2012-01-01" },
});

type NamedFile = Blob & { name: string };
type Outcomes = Map<number, CohortOutcome>;

function filesIn(dir: string, suffix: string): NamedFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .sort()
    .map((f) => new File([readFileSync(`${dir}/${f}`)], f));
}

async function run(
  db: FedwardDb,
  files: NamedFile[],
  spec: CohortSpec,
  options: Parameters<typeof importCohort>[4] & { onFirstPatient?(): Promise<void> } = {},
): Promise<{ outcomes: Outcomes; result: CohortImportResult }> {
  const outcomes: Outcomes = new Map();
  const result = await importCohort(
    files,
    spec,
    db,
    async (key, outcome) => {
      if (outcomes.size === 0) await options.onFirstPatient?.();
      expect(outcomes.has(key), `holdout key ${key} given twice`).toBe(false);
      outcomes.set(key, outcome);
    },
    options,
  );
  return { outcomes, result };
}

function ndjson(path: string): FhirResource[] {
  return gunzipSync(readFileSync(path))
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as FhirResource);
}

/** The reference: the bulk export grouped by patient in memory, extractFhir per patient. */
function referenceFhir(dir: string, spec: CohortSpec): Outcomes {
  const groups = new Map<string, { patient?: FhirResource; resources: FhirResource[] }>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ndjson.gz"))) {
    for (const r of ndjson(`${dir}/${file}`)) {
      const ref = patientRef(r);
      if (ref === undefined) continue;
      const group = groups.get(ref) ?? { resources: [] };
      groups.set(ref, group);
      if (r.resourceType === "Patient") group.patient = r;
      else group.resources.push(r);
    }
  }
  const out: Outcomes = new Map();
  for (const [ref, { patient, resources }] of groups)
    if (patient !== undefined) out.set(fnv1a32(ref), extractFhir(spec, { patient, resources }));
  return out;
}

function omopTable(name: string): OmopRow[] {
  const text = gunzipSync(readFileSync(`${OMOP}/${name}.csv.gz`)).toString("utf8");
  return Papa.parse<OmopRow>(text, { header: true, skipEmptyLines: true }).data;
}

/** The reference: the tables grouped by person_id in memory, extractOmop per person. */
function referenceOmop(spec: CohortSpec): Outcomes {
  const persons = groupOmopByPerson(omopTable);
  return new Map([...persons].map(([id, t]) => [fnv1a32(id), extractOmop(spec, t)]));
}

function sorted(outcomes: Outcomes): [number, CohortOutcome][] {
  return [...outcomes].sort(([a], [b]) => a - b);
}

/** Every string anywhere in a value. */
function strings(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof value === "string") into.add(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, into);
  else if (value !== null && typeof value === "object")
    for (const v of Object.values(value)) strings(v, into);
  return into;
}

describe("holdout keys and file names", () => {
  it("hashes with FNV-1a 32-bit (published test vectors)", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("recognises OMOP tables by name, case-insensitively, and tells other CSVs and FHIR files apart", () => {
    expect(omopTableOf("measurement.csv.gz")).toBe("MEASUREMENT");
    expect(omopTableOf("export/Condition_Occurrence.CSV")).toBe("CONDITION_OCCURRENCE");
    expect(omopTableOf("DRUG_EXPOSURE.csv.gz")).toBe("other");
    expect(omopTableOf("Observation.000.ndjson.gz")).toBeUndefined();
  });
});

describe("readOmopTable", () => {
  it("gives papaparse's header-mode rows across chunk boundaries, gzipped, with quoted line breaks", async () => {
    // Prepare: ~1 MiB, so the stream arrives in many chunks; quoted commas, quotes, line breaks and
    // multi-byte characters land on chunk boundaries somewhere.
    const lines = ["observation_id,person_id,value_as_string,observation_date"];
    for (let i = 0; i < 20_000; i++) {
      const value = i % 7 === 0 ? `"a, ""b""\nc é${i}"` : i % 5 === 0 ? "" : `plain ✓ ${i}`;
      lines.push(`${i},${i % 31},${value},2019-01-0${(i % 9) + 1}`);
    }
    const text = `${lines.join("\r\n")}\r\n`;
    const gz = await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).blob();
    const expected = Papa.parse<OmopRow>(text, { header: true, skipEmptyLines: true }).data;

    // Execute
    const read = async (blob: Blob) => {
      const rows: OmopRow[] = [];
      for await (const { row } of readOmopTable(blob, (_, message) => expect.fail(message))) rows.push(row);
      return rows;
    };

    // Assert
    expect(expected).toHaveLength(20_000);
    expect(await read(new Blob([text]))).toEqual(expected);
    expect(await read(gz)).toEqual(expected);
  });
});

describe.runIf(HAVE_FHIR)("importCohort on the Synthea FHIR sample (real data)", () => {
  const reference = HAVE_FHIR ? referenceFhir(BULK, hypertension) : new Map();

  it("gives the same outcome per patient from the bulk export, from the 200 bundles and in memory", async () => {
    // Prepare
    const db = freshDb();

    // Execute
    const bulk = await run(db, filesIn(BULK, ".ndjson.gz"), hypertension);
    const bundles = await run(db, filesIn(BUNDLES, ".json.gz"), hypertension);

    // Assert
    expect(reference.size).toBe(199);
    expect(sorted(bulk.outcomes)).toEqual(sorted(reference));
    expect(sorted(bundles.outcomes)).toEqual(sorted(reference));
    for (const { result } of [bulk, bundles]) {
      expect(result.patients).toBe(199);
      expect(result.examples + Object.values(result.excluded).reduce((a, b) => a + b, 0)).toBe(199);
      expect(result.problemCount).toBe(0);
    }
    expect(bulk.result.files.every((f) => f.kind === "fhir")).toBe(true);
    expect(bulk.result.files.find((f) => f.name === "Observation.000.ndjson.gz")?.resources).toBe(19_800);
    expect(await db.staging.count()).toBe(0);
  });

  it("stages encounters for a first-encounter index and still matches the reference", async () => {
    const db = freshDb();
    const { outcomes } = await run(db, filesIn(BULK, ".ndjson.gz"), firstEncounter);
    expect(sorted(outcomes)).toEqual(sorted(referenceFhir(BULK, firstEncounter)));
    expect([...outcomes.values()].filter((o) => o.kind === "example").length).toBeGreaterThan(100);
  });

  it("stages no patient id, resource id, name or ISO date, and shifts every birth date", async () => {
    // Prepare: what would identify the patients.
    const patients = ndjson(`${BULK}/Patient.000.ndjson.gz`);
    const names = new Set<string>();
    for (const p of patients)
      for (const n of (p.name ?? []) as { family?: string; given?: string[] }[]) {
        if (n.family !== undefined) names.add(n.family);
        for (const g of n.given ?? []) names.add(g);
      }
    const ids = patients.map((p) => p.id as string);
    const births = new Set(patients.map((p) => Date.parse(`${p.birthDate}T00:00:00Z`)));
    const db = freshDb();
    let staged: StagingRow[] = [];

    // Execute: look at IndexedDB when pass 1 is over, before any row is deleted.
    await run(db, filesIn(BULK, ".ndjson.gz"), firstEncounter, {
      onFirstPatient: async () => {
        staged = await db.staging.toArray();
      },
    });

    // Assert
    // The import id is a random UUID of our own, not data: left out before looking for resource UUIDs.
    const text = JSON.stringify(staged.map(({ importId: _, ...row }) => row));
    expect(staged.length).toBeGreaterThan(1000);
    expect(names.size).toBeGreaterThan(300);
    for (const id of ids) expect(text.includes(id), "a Patient id was staged").toBe(false);
    expect(
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.test(text),
      "a UUID was staged",
    ).toBe(false);
    expect(/\d{4}-\d{2}-\d{2}/.test(text), "an ISO date was staged").toBe(false);
    const stagedStrings = strings(staged);
    for (const name of names) expect(stagedStrings.has(name), "a name was staged").toBe(false);
    const stagedBirths = staged.flatMap((r) =>
      r.kind === "patient" && r.fact.birth ? [r.fact.birth.start] : [],
    );
    expect(stagedBirths.length).toBe(199);
    // A shifted birth date lands on one of the 199 real ones by chance: summed over patients, the real
    // birthdays within each one's ±5-year window give 1.28 expected coincidences per import (Poisson:
    // P(12 or more) is about 1.3e-8). Without the shift all 199 would match.
    expect(stagedBirths.filter((b) => births.has(b)).length).toBeLessThan(12);
    expect(new Set(staged.map((r) => r.importId)).size).toBe(1);
    expect(staged.every((r) => Number.isInteger(r.patient) && r.patient < 199)).toBe(true);
  });

  it("imports the 10-patient real export without an Observation file: observation features missing", async () => {
    const db = freshDb();
    const { outcomes, result } = await run(db, filesIn(SMALL, ".ndjson.gz"), hypertension);
    // 10 living patients and 3 earlier records of the same people (Synthea writes those as Patients too).
    expect(result.patients).toBe(13);
    expect(sorted(outcomes)).toEqual(sorted(referenceFhir(SMALL, hypertension)));
    const examples = [...outcomes.values()].flatMap((o) => (o.kind === "example" ? [o] : []));
    expect(examples.length).toBeGreaterThan(0);
    const observationFeatures = ["bmi", "systolic", "diastolic", "hba1c", "smoking"].map((name) =>
      hypertension.features.findIndex((f) => f.name === name),
    );
    for (const e of examples) {
      for (const i of observationFeatures) expect(e.values[i]).toBeUndefined();
      expect(typeof e.values[0]).toBe("number");
    }
    expect(await db.staging.count()).toBe(0);
  });

  it("reports progress per file in stored bytes, then per patient", async () => {
    const db = freshDb();
    const files = filesIn(SMALL, ".ndjson.gz");
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const seen: CohortProgress[] = [];
    await run(db, files, hypertension, { onProgress: (p) => seen.push(p) });
    const reading = seen.filter((p) => p.phase === "reading");
    const deriving = seen.filter((p) => p.phase === "deriving");
    expect(reading.length).toBeGreaterThanOrEqual(files.length);
    expect(reading.every((p, i) => i === 0 || p.bytesRead >= (reading[i - 1]?.bytesRead ?? 0))).toBe(true);
    expect(reading.at(-1)?.bytesRead).toBe(total);
    expect(new Set(reading.map((p) => p.fileIndex)).size).toBe(files.length);
    expect(reading.every((p) => p.totalBytes === total && p.files === files.length)).toBe(true);
    expect(deriving.at(-1)?.patients).toBe(13);
  });

  it("reports a truncated NDJSON line and an invalid JSON file, and reads the other files", async () => {
    // Prepare: the Patient file cut in the middle of its last line, a broken JSON file, the Conditions.
    const text = gunzipSync(readFileSync(`${BULK}/Patient.000.ndjson.gz`))
      .toString("utf8")
      .trimEnd();
    const cut = new File([text.slice(0, text.length - 40)], "Patient.000.ndjson");
    const broken = new File(
      ['{\n  "resourceType": "Bundle",\n  "type": "collection", "entry": [\n'],
      "broken.json",
    );
    const conditions = new File([readFileSync(`${BULK}/Condition.000.ndjson.gz`)], "Condition.000.ndjson.gz");
    const db = freshDb();

    // Execute
    const { result } = await run(db, [broken, cut, conditions], hypertension);

    // Assert: 198 patients read whole; the cut one's conditions are one missing patient, counted once.
    expect(result.patients).toBe(198);
    const about = (file: string) => result.problems.filter((p) => p.file === file);
    expect(about("broken.json")).toHaveLength(1);
    expect(about("broken.json")[0]?.message).toMatch(/not valid JSON/);
    expect(about("Patient.000.ndjson")).toHaveLength(1);
    expect(about("Patient.000.ndjson")[0]?.line).toBe(199);
    expect(about("Patient.000.ndjson")[0]?.message).toMatch(/cut off/);
    expect(result.problems.find((p) => p.file === "")?.message).toMatch(/^1 patients are referred to/);
    expect(result.problemCount).toBe(3);
    expect(result.files.map((f) => [f.name, f.problems])).toEqual([
      ["broken.json", 1],
      ["Patient.000.ndjson", 1],
      ["Condition.000.ndjson.gz", 0],
    ]);
    expect(await db.staging.count()).toBe(0);
  });

  it("leaves no staged rows after onPatient throws, after an abort while reading or deriving", async () => {
    const db = freshDb();
    const files = filesIn(BULK, ".ndjson.gz");

    // onPatient fails
    const failing = importCohort(files, hypertension, db, () => {
      throw new Error("disk full");
    });
    await expect(failing).rejects.toThrow("disk full");
    expect(await db.staging.count()).toBe(0);

    // abort in pass 1, once a few files are staged
    const reading = new AbortController();
    const aborted = importCohort(files, hypertension, db, () => undefined, {
      signal: reading.signal,
      onProgress: (p) => {
        if (p.fileIndex === 3) reading.abort();
      },
    });
    await expect(aborted).rejects.toMatchObject({ name: "AbortError" });
    expect(await db.staging.count()).toBe(0);

    // abort in pass 2
    const deriving = new AbortController();
    let seen = 0;
    const late = importCohort(
      files,
      hypertension,
      db,
      () => {
        if (++seen === 70) deriving.abort();
      },
      { signal: deriving.signal },
    );
    await expect(late).rejects.toMatchObject({ name: "AbortError" });
    expect(seen).toBeLessThan(199);
    expect(await db.staging.count()).toBe(0);
  });

  it("sweeps rows a killed import left behind before staging its own", async () => {
    const db = freshDb();
    await db.staging.bulkAdd([
      { importId: "killed", patient: 0, seq: 0, kind: "problem", message: "left behind", rank: 0 },
      { importId: "zzz-killed", patient: 3, seq: 9, kind: "problem", message: "left behind", rank: 0 },
    ]);
    let during: string[] = [];
    await run(
      db,
      [new File([readFileSync(`${BULK}/Patient.000.ndjson.gz`)], "Patient.ndjson.gz")],
      hypertension,
      {
        onFirstPatient: async () => {
          during = (await db.staging.toArray()).map((r) => r.importId);
        },
      },
    );
    expect(during.length).toBe(199);
    expect(during.filter((id) => id.includes("killed"))).toEqual([]);
    expect(await db.staging.count()).toBe(0);
  });

  it("refuses OMOP tables mixed with FHIR files", async () => {
    const db = freshDb();
    const files = [new File(["person_id\n1\n"], "PERSON.csv"), new File([""], "Patient.ndjson")];
    await expect(importCohort(files, hypertension, db, () => undefined)).rejects.toMatchObject({
      name: "ImportError",
      message: expect.stringMatching(/PERSON\.csv is an OMOP table.*Patient\.ndjson is not/),
    });
  });
});

describe.runIf(HAVE_OMOP)("importCohort on the Synthea27Nj OMOP export (real data)", () => {
  it("gives the same outcome per person as extractOmop on the tables grouped in memory", async () => {
    // Prepare
    const reference = referenceOmop(omopSpec);
    const db = freshDb();

    // Execute
    const { outcomes, result } = await run(db, filesIn(OMOP, ".csv.gz"), omopSpec);

    // Assert
    expect(reference.size).toBe(28);
    expect(sorted(outcomes)).toEqual(sorted(reference));
    expect(result.patients).toBe(28);
    expect(result.examples).toBe(24);
    const kinds = Object.fromEntries(result.files.map((f) => [f.name, f.kind]));
    expect(kinds["MEASUREMENT.csv.gz"]).toBe("omop");
    expect(kinds["DRUG_EXPOSURE.csv.gz"]).toBe("unsupported");
    expect(result.files.find((f) => f.name === "MEASUREMENT.csv.gz")?.resources).toBe(
      omopTable("MEASUREMENT").length,
    );
    // The two tables a cohort does not read are the only problems.
    expect(result.problems.map((p) => p.file).sort()).toEqual([
      "DRUG_EXPOSURE.csv.gz",
      "PROCEDURE_OCCURRENCE.csv.gz",
    ]);
    expect(await db.staging.count()).toBe(0);
  });

  it("stages no person_source_value and no ISO date", async () => {
    const db = freshDb();
    const sources = omopTable("PERSON").map((r) => r.person_source_value as string);
    let text = "";
    await run(db, filesIn(OMOP, ".csv.gz"), omopSpec, {
      onFirstPatient: async () => {
        text = JSON.stringify(await db.staging.toArray());
      },
    });
    expect(text.length).toBeGreaterThan(1000);
    for (const s of sources) expect(text.includes(s)).toBe(false);
    expect(/\d{4}-\d{2}-\d{2}/.test(text), "an ISO date was staged").toBe(false);
  });
});
