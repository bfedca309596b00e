import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Plan, parsePlan } from "../../../src/core/plan";
import type { ImportProblem } from "../../../src/store/db";
import { importImages } from "../../../workers/import/image-import";
import { folderOf, normalizeKey, pathKeys, readImageLabels } from "../../../workers/import/image-labels";
import { ImportError } from "../../../workers/import/parser";
import { frameFromRgba, pngSize, rasterKind } from "../../../workers/import/raster";
import { encodePng } from "../../support/png";

const DICOM = "../shared/data/dicom/pydicom";
const HAVE_DICOM = existsSync(DICOM);
if (!HAVE_DICOM) console.warn("image-import DICOM tests skipped: ../shared/data/dicom absent");

function plan(image: Record<string, unknown>, labels = { positive: "CT", negative: "MR" }): Plan {
  return parsePlan({
    id: "image-unit",
    title: "image unit test",
    features: [],
    image: { width: 8, height: 8, channels: 1, ...image },
    label: labels,
    model: { type: "cnn", conv: [{ filters: 2, kernel: 3, pool: 2 }], dense: [], activation: "relu" },
    training: { epochs: 1, batchSize: 4, optimizer: "sgd", learningRate: 0.1 },
    privacy: { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
    rounds: 1,
    minSites: 1,
  });
}

/** Collects what the importer hands the dataset writer (in place of IndexedDB shards). */
function sink() {
  const examples: { x: Float32Array; y: 0 | 1; key: number }[] = [];
  const problems: ImportProblem[] = [];
  return {
    examples,
    problems,
    add(x: Float32Array, y: 0 | 1, key: number) {
      examples.push({ x, y, key });
    },
    problem(p: ImportProblem) {
      problems.push(p);
    },
  };
}

const dicomFile = (name: string) => ({
  file: new Blob([readFileSync(join(DICOM, name))]),
  path: `export/${name}`,
  label: `file of ${name.length} chars`,
});

const csv = (text: string) => Object.assign(new Blob([text]), { name: "labels.csv" });

describe("image labels", () => {
  it("normalises keys: DICOM padding, path separators, folder of a path", () => {
    expect(normalizeKey("SOPInstanceUID", "1.2.3\0")).toBe("1.2.3");
    expect(normalizeKey("PatientID", "  AB12 ")).toBe("AB12");
    expect(normalizeKey("path", ".\\scans\\a.png")).toBe("scans/a.png");
    expect(pathKeys("site1/scans/a.png")).toEqual(["site1/scans/a.png", "scans/a.png"]);
    expect(folderOf("site1/8/0001.png")).toBe("8");
    expect(folderOf("0001.png")).toBe("");
  });

  it("reads a labels CSV, reports bad rows by line and never quotes a cell", async () => {
    const p = plan({ source: "dicom", labels: { key: "PatientID", labelColumn: "finding" } });
    const labels = await readImageLabels(csv("PatientID,finding\nP1,CT\nP2,MR\nP3,maybe\n,CT\nP1,MR\n"), p);
    expect(labels.size).toBe(2);
    expect(labels.get("P1 ")).toBe(1);
    expect(labels.get("P2")).toBe(0);
    expect(labels.get("P3")).toBeUndefined();
    expect(labels.problems.map((q) => q.line)).toEqual([4, 5, 6]);
    expect(JSON.stringify(labels.problems)).not.toMatch(/maybe|P1|P3/);
  });

  it("refuses a labels CSV without the plan's columns, naming them", async () => {
    const p = plan({ source: "dicom", labels: { key: "SOPInstanceUID" } });
    await expect(readImageLabels(csv("uid,label\n1.2,CT\n"), p)).rejects.toThrow(
      /no column "SOPInstanceUID" \(the plan's image.labels.column\)/,
    );
  });
});

describe("raster helpers", () => {
  it("tells PNG and JPEG by magic bytes and reads a PNG's size before decoding", () => {
    const png = encodePng(new Uint8Array(12), 4, 3, 1);
    expect(rasterKind(png)).toBe("png");
    expect(pngSize(png)).toEqual({ width: 4, height: 3 });
    expect(rasterKind(Uint8Array.of(0xff, 0xd8, 0xff, 0xe0))).toBe("jpeg");
    expect(rasterKind(new TextEncoder().encode("DICM"))).toBeUndefined();
  });

  it("turns RGBA into grey when the channels agree and composites alpha over black", () => {
    const grey = frameFromRgba(Uint8Array.of(10, 10, 10, 255, 200, 200, 200, 128), 2, 1);
    expect(grey.photometric).toBe("MONOCHROME2");
    expect([...grey.samples]).toEqual([10, 100]);
    const rgb = frameFromRgba(Uint8Array.of(255, 0, 0, 255, 0, 0, 255, 255), 2, 1);
    expect(rgb.photometric).toBe("RGB");
    expect([...rgb.samples]).toEqual([255, 0, 0, 0, 0, 255]);
  });
});

describe.runIf(HAVE_DICOM)("importImages on pydicom's files (Node; the sink stands in for IndexedDB)", () => {
  it("makes one example per labelled image, skips non-images with the reason, reports broken files", async () => {
    const p = plan({ source: "dicom", labels: { key: "PatientID", labelColumn: "modality" } });
    const labels = await readImageLabels(csv("PatientID,modality\n1CT1,CT\n4MR1,MR\n"), p);
    const out = sink();
    const files = [
      "CT_small.dcm",
      "MR_small.dcm",
      "MR_small_RLE.dcm",
      "test-SR.dcm",
      "MR_truncated.dcm",
      "JPEG2000.dcm",
    ];
    const result = await importImages(files.map(dicomFile), labels, p, out);
    expect(out.examples.map((e) => e.y)).toEqual([1, 0, 0]);
    // The RLE twin gives the very same model input as the uncompressed file
    expect(out.examples[2]?.x).toEqual(out.examples[1]?.x);
    // Same patient, same side of the holdout split
    expect(out.examples[1]?.key).toBe(out.examples[2]?.key);
    expect(result.files.map((f) => f.outcome)).toEqual([
      "example",
      "example",
      "example",
      "skipped",
      "problem",
      "problem",
    ]);
    expect(out.problems[0]?.message).toMatch(/Structured Report, not an image/);
    expect(out.problems[1]?.message).toMatch(/Pixel Data/);
    expect(out.problems[2]?.message).toMatch(/no row for this file's PatientID/);
    expect(result.rowsSkipped).toBe(3);
    // Problems name files by their label, never by their name (names can hold a patient's)
    expect(JSON.stringify(out.problems)).not.toMatch(/CT_small|MR_truncated|test-SR|1CT1|4MR1/);
  });

  it("labels by folder name, and a DICOM plan leaves PNG files out (and the other way round)", async () => {
    const dicomPlan = plan({ source: "dicom", labels: { key: "folder" } });
    const png = encodePng(new Uint8Array(64).fill(7), 8, 8, 1);
    const sources = [
      { ...dicomFile("CT_small.dcm"), path: "study/CT/ct.dcm" },
      { ...dicomFile("MR_small.dcm"), path: "study/other/mr.dcm" },
      {
        file: new Blob([png as Uint8Array<ArrayBuffer>]),
        path: "study/CT/a.png",
        label: "file 3 of 3 (.png)",
      },
    ];
    const out = sink();
    const result = await importImages(sources, undefined, dicomPlan, out);
    expect(out.examples.map((e) => e.y)).toEqual([1]);
    expect(result.files.map((f) => f.outcome)).toEqual(["example", "problem", "skipped"]);
    expect(out.problems[0]?.message).toMatch(/folder's name is neither "CT" nor "MR"/);
    expect(out.problems[1]?.message).toMatch(/reads DICOM files only/);

    const pngPlan = plan({ source: "images", labels: { key: "folder" } });
    const out2 = sink();
    const result2 = await importImages([sources[0] as (typeof sources)[0]], undefined, pngPlan, out2);
    expect(result2.files[0]?.outcome).toBe("skipped");
    expect(out2.problems[0]?.message).toMatch(/reads PNG and JPEG images only/);
  });

  it("needs a labels CSV unless labels come from folders", async () => {
    const p = plan({ source: "dicom", labels: { key: "SOPInstanceUID" } });
    await expect(importImages([dicomFile("CT_small.dcm")], undefined, p, sink())).rejects.toThrow(
      ImportError,
    );
  });
});
