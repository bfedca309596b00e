// fake-indexeddb stands in for the browser's IndexedDB in this unit test; the real one is covered by the
// browser e2e. It must load before Dexie so Dexie finds it.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { inputWidth, type Plan, parsePlan } from "../../../src/core/plan";
import type { FedwardDb, ShardRow } from "../../../src/store/db";
import { type WriteElement, writeDicom } from "../../../workers/import/dicom/write";
import { importImages } from "../../../workers/import/image-import";
import { importDataset } from "../../../workers/import/shard-writer";
import { groupsByPatient, unitKey } from "../../../workers/import/units";
import { everythingStored, freshDb, importText, smallPlan } from "./support";

/** The CSV plan of support.ts with csv.patientColumn "mrn". */
function patientPlan(holdoutFraction = 0.3): Plan {
  return parsePlan({ ...smallPlan(holdoutFraction), csv: { patientColumn: "mrn" } });
}

async function shardsOf(db: FedwardDb, datasetId: string): Promise<ShardRow[]> {
  return db.shards.where("datasetId").equals(datasetId).toArray();
}

/** Every stored example as its features, unit number (or undefined) and split. */
async function storedExamples(db: FedwardDb, datasetId: string, width: number) {
  const out: { x: number[]; unit: number | undefined; split: string }[] = [];
  for (const s of await shardsOf(db, datasetId)) {
    for (let i = 0; i < s.count; i++) {
      out.push({
        x: Array.from(s.x.subarray(i * width, (i + 1) * width)),
        unit: s.unit?.[i],
        split: s.split,
      });
    }
  }
  return out;
}

const mrn = (p: number) => `MRN-${String(p * 7919).padStart(6, "0")}-Q`;

/**
 * 80 patients, 1 to 4 rows each, interleaved; a row's age is 50 + its row number (x0 = row / 10) and its
 * bmi 25 + 5 * patient (x1 = patient), so that every stored example tells its row and patient.
 */
function patientsCsv(): { text: string; patientOfRow: number[] } {
  const rows: string[] = ["age,bmi,mrn,outcome"];
  const patientOfRow: number[] = [];
  for (let r = 0; r < 200; r++) {
    const p = (r * 37) % 80;
    if (r >= 80 && ((r * 13) % 5 === 0 || p % 4 === 0)) continue;
    patientOfRow.push(p);
    rows.push(`${50 + patientOfRow.length - 1},${25 + 5 * p},${mrn(p)},${r % 3 ? "yes" : "no"}`);
  }
  return { text: `${rows.join("\n")}\n`, patientOfRow };
}

describe("units of a CSV plan with csv.patientColumn", () => {
  it("numbers patients in order of first appearance, keeps each patient's rows in one split, and counts trainUnits", async () => {
    // Prepare
    const db = freshDb();
    const { text, patientOfRow } = patientsCsv();

    // Execute
    const dataset = await importText(db, text, patientPlan());
    const stored = await storedExamples(db, dataset.id, 2);

    // Assert
    expect(stored).toHaveLength(patientOfRow.length);
    expect(new Set(patientOfRow).size).toBe(80);
    const unitOf = new Map<number, number>();
    const splitOf = new Map<number, string>();
    for (const e of stored) {
      const patient = e.x[1] as number;
      expect(e.unit).toBeTypeOf("number");
      if (!unitOf.has(patient)) unitOf.set(patient, e.unit as number);
      if (!splitOf.has(patient)) splitOf.set(patient, e.split);
      expect(e.unit).toBe(unitOf.get(patient));
      expect(e.split).toBe(splitOf.get(patient));
    }
    // Sequential numbers in file order of each patient's first row, never derived from the MRN
    const firstSeen = [...new Set(patientOfRow)];
    expect(firstSeen.map((p) => unitOf.get(p))).toEqual(firstSeen.map((_, i) => i));
    const trainPatients = [...splitOf.values()].filter((s) => s === "train").length;
    expect(trainPatients).toBeGreaterThan(30);
    expect(trainPatients).toBeLessThan(80);
    expect(dataset.trainUnits).toBe(trainPatients);
    expect(dataset.numTrain).toBe(stored.filter((e) => e.split === "train").length);
    expect(dataset.numTrain).toBeGreaterThan(trainPatients);
  });

  it("stores neither the identifiers nor their hashes", async () => {
    // Prepare
    const db = freshDb();
    const { text } = patientsCsv();

    // Execute
    await importText(db, text, patientPlan());
    const all = await everythingStored(db);

    // Assert
    for (let p = 0; p < 80; p++) {
      expect(all).not.toContain(mrn(p));
      expect(all).not.toContain(unitKey(mrn(p)));
      expect(all).not.toContain(unitKey(mrn(p)).slice(8));
    }
    expect(all).not.toContain("MRN-");
  });

  it("skips a row without a patient, saying so without quoting anyone's identifier", async () => {
    // Prepare
    const db = freshDb();
    const text = `age,bmi,mrn,outcome\n50,25,MRN-1,yes\n51,25, ,no\n52,30,MRN-2,yes\n`;

    // Execute
    const dataset = await importText(db, text, patientPlan(0.01));

    // Assert
    expect(dataset.numTrain + dataset.numHoldout).toBe(2);
    expect(dataset.rowsSkipped).toBe(1);
    expect(dataset.problems).toEqual([
      { line: 3, column: "mrn", message: "missing value (the plan's csv.patientColumn: whose row this is)" },
    ]);
    expect(JSON.stringify(dataset.problems)).not.toContain("MRN");
  });

  it("refuses a file without the patient column, naming it", async () => {
    const db = freshDb();
    await expect(importText(db, "age,bmi,outcome\n50,25,yes\n", patientPlan())).rejects.toThrow(
      /missing the column "mrn" that the plan's csv\.patientColumn names/,
    );
  });

  it("without csv.patientColumn every row is its own unit: no unit numbers, trainUnits = numTrain", async () => {
    // Prepare
    const db = freshDb();
    const { text } = patientsCsv();

    // Execute
    const dataset = await importText(db, text, smallPlan(0.3));

    // Assert
    expect((await shardsOf(db, dataset.id)).every((s) => s.unit === undefined)).toBe(true);
    expect(dataset.trainUnits).toBe(dataset.numTrain);
    expect(groupsByPatient(smallPlan())).toBe(false);
  });
});

/** A 2×3 grey DICOM image of `patient` (no PatientID element when undefined), pixel values from `seed`. */
function dicomImage(seed: number, patient: string | undefined): Uint8Array {
  const elements: WriteElement[] = [
    { tag: 0x00080016, vr: "UI", value: "1.2.840.10008.5.1.4.1.1.2" },
    { tag: 0x00080018, vr: "UI", value: `2.25.${1000 + seed}` },
    { tag: 0x00080060, vr: "CS", value: "CT" },
    ...(patient === undefined ? [] : [{ tag: 0x00100020, vr: "LO", value: patient }]),
    { tag: 0x00280002, vr: "US", value: [1] },
    { tag: 0x00280004, vr: "CS", value: "MONOCHROME2" },
    { tag: 0x00280010, vr: "US", value: [2] },
    { tag: 0x00280011, vr: "US", value: [3] },
    { tag: 0x00280100, vr: "US", value: [16] },
    { tag: 0x00280101, vr: "US", value: [16] },
    { tag: 0x00280102, vr: "US", value: [15] },
    { tag: 0x00280103, vr: "US", value: [0] },
    {
      tag: 0x7fe00010,
      vr: "OW",
      value: new Uint8Array(Uint16Array.from({ length: 6 }, (_, i) => 100 * seed + 10 * i).buffer),
    },
  ];
  return writeDicom(elements);
}

function imagePlan(source: "dicom" | "images"): Plan {
  return parsePlan({
    id: "image-units",
    title: "image units",
    features: [],
    image: { width: 2, height: 2, channels: 1, source, labels: { key: "folder" } },
    label: { positive: "CT", negative: "MR" },
    model: { type: "mlp", hidden: [], activation: "relu" },
    training: { optimizer: "sgd", learningRate: 0.1 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1,
      noiseMultiplier: 1,
      delta: 1e-5,
      epsilonBudget: 10,
      stepsPerRound: 1,
      samplingRate: 0.5,
    },
    evaluation: { holdoutFraction: 0.4 },
    rounds: 1,
    minSites: 1,
  });
}

/** What the import worker does for an image folder, minus comlink and the labels CSV. */
function importFolder(db: FedwardDb, plan: Plan, files: { bytes: Uint8Array; path: string }[]) {
  const meta = {
    federationId: "fed-images",
    planHash: "h",
    fileName: `${files.length} image files`,
    numFeatures: inputWidth(plan),
    holdoutFraction: plan.evaluation.holdoutFraction,
    units: groupsByPatient(plan),
  };
  return importDataset(db, meta, (sink) =>
    importImages(
      files.map((f, i) => ({
        file: new Blob([f.bytes as Uint8Array<ArrayBuffer>]),
        path: f.path,
        label: `file ${i + 1}`,
      })),
      undefined,
      plan,
      sink,
    ),
  );
}

describe("units of an image plan", () => {
  it("DICOM: images of one PatientID share a unit and a split; a file without PatientID is its own unit", async () => {
    // Prepare: 12 patients of 2 images each (the second image of a patient later in the folder), 3 without
    const db = freshDb();
    const plan = imagePlan("dicom");
    const files: { bytes: Uint8Array; path: string }[] = [];
    for (let p = 0; p < 12; p++)
      files.push({ bytes: dicomImage(2 * p, `PAT^${p}^77`), path: `a/CT/${p}.dcm` });
    for (let k = 0; k < 3; k++) files.push({ bytes: dicomImage(100 + k, undefined), path: `b/MR/${k}.dcm` });
    for (let p = 0; p < 12; p++)
      files.push({ bytes: dicomImage(2 * p + 1, `PAT^${p}^77`), path: `c/MR/${p}.dcm` });

    // Execute
    const dataset = await importFolder(db, plan, files);
    const shards = await shardsOf(db, dataset.id);
    const all = await everythingStored(db);

    // Assert: the unit is read back by the image's first pixel (100 seed at 16 bits, scaled alike per file)
    const examples = await storedExamples(db, dataset.id, 4);
    expect(examples).toHaveLength(27);
    expect(shards.every((s) => s.unit instanceof Uint32Array)).toBe(true);
    const units = examples.map((e) => e.unit as number);
    expect(new Set(units).size).toBe(15);
    expect([...new Set(units)].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    // Images of one patient: in file order, patient p is unit p (first seen), and its second image too
    const byUnit = new Map<number, { split: string; count: number }>();
    for (const e of examples) {
      const seen = byUnit.get(e.unit as number);
      if (seen) {
        expect(e.split).toBe(seen.split);
        seen.count++;
      } else byUnit.set(e.unit as number, { split: e.split, count: 1 });
    }
    expect([...byUnit.values()].filter((u) => u.count === 2)).toHaveLength(12);
    expect([...byUnit.values()].filter((u) => u.count === 1)).toHaveLength(3);
    expect(dataset.trainUnits).toBe([...byUnit.values()].filter((u) => u.split === "train").length);
    expect(dataset.numHoldout).toBeGreaterThan(0);
    expect(all).not.toContain("PAT^");
    expect(all).not.toContain(unitKey("PAT^3^77"));
  });

  it("PNG and JPEG plans store no unit numbers; DICOM and patientColumn plans do (PNG decoding needs a browser: see test/e2e)", () => {
    expect(groupsByPatient(imagePlan("images"))).toBe(false);
    expect(groupsByPatient(imagePlan("dicom"))).toBe(true);
    expect(groupsByPatient(patientPlan())).toBe(true);
  });
});
