// fake-indexeddb stands in for the browser's IndexedDB in this unit test; the real one is covered by the
// browser e2e. It must load before Dexie so Dexie finds it.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { getCompleteDataset } from "../../../src/store/datasets";
import { isHoldout } from "../../../workers/import/holdout";
import { demoCsv, demoPlan, freshDb, importText, storedSplit } from "./support";

/** The demo file read naively (it has no quotes): the test's own reading, independent of the importer. */
function naiveRows() {
  const [header = "", ...lines] = demoCsv().trim().split("\n");
  const names = header.split(",");
  return lines.map((text, i) => {
    const cells = text.split(",");
    return { line: i + 2, cells: Object.fromEntries(names.map((n, j) => [n, cells[j] ?? ""])) };
  });
}

describe("importing the WDBC demo file", () => {
  it("keeps all 190 rows, with the file's own class counts", async () => {
    // Prepare
    const db = freshDb();
    const rows = naiveRows();

    // Execute
    const dataset = await importText(db, demoCsv(), demoPlan(), { fileName: "wdbc-site1.csv" });

    // Assert
    expect(rows).toHaveLength(190);
    expect(dataset).toMatchObject({ status: "complete", rowsRead: 190, rowsSkipped: 0, problemCount: 0 });
    expect(dataset.numTrain + dataset.numHoldout).toBe(190);
    expect(dataset.positives).toBe(rows.filter((r) => r.cells.diagnosis === "malignant").length);
    expect(dataset.negatives).toBe(rows.filter((r) => r.cells.diagnosis === "benign").length);
    expect(dataset.positives).toBeGreaterThan(0);
    expect(dataset.negatives).toBeGreaterThan(0);
  });

  it("stores (v - mean) / std as float32, in the plan's feature order and the file's row order", async () => {
    // Prepare
    const db = freshDb();
    const plan = demoPlan();
    const normalised = (cells: Record<string, string>) =>
      plan.features.map((f) =>
        f.type === "number" ? Math.fround((Number(cells[f.column as string]) - f.mean) / f.std) : Number.NaN,
      );
    const label = (cells: Record<string, string>) => (cells.diagnosis === "malignant" ? 1 : 0);
    const inHoldout = (line: number) => isHoldout(line, plan.evaluation.holdoutFraction);
    const rows = naiveRows();

    // Execute
    const dataset = await importText(db, demoCsv(), plan);
    const train = await storedSplit(db, dataset.id, "train");
    const holdout = await storedSplit(db, dataset.id, "holdout");

    // Assert: the first row by hand, then every row of each split
    const first = rows[0] as (typeof rows)[number];
    const firstSplit = inHoldout(first.line) ? holdout : train;
    expect(firstSplit.x.slice(0, plan.features.length)).toEqual(normalised(first.cells));
    expect(firstSplit.x[0]).toBe(Math.fround((17.99 - 14.1273) / 3.52095));
    expect(train.x).toEqual(rows.filter((r) => !inHoldout(r.line)).flatMap((r) => normalised(r.cells)));
    expect(holdout.x).toEqual(rows.filter((r) => inHoldout(r.line)).flatMap((r) => normalised(r.cells)));
    expect(train.y).toEqual(rows.filter((r) => !inHoldout(r.line)).map((r) => label(r.cells)));
    expect(holdout.y).toEqual(rows.filter((r) => inHoldout(r.line)).map((r) => label(r.cells)));
  });

  it("holds out about the plan's fraction, and exactly the same rows on a re-import", async () => {
    // Prepare
    const db = freshDb();
    const first = await importText(db, demoCsv(), demoPlan());
    const firstHoldout = await storedSplit(db, first.id, "holdout");

    // Execute
    const second = await importText(db, demoCsv(), demoPlan());
    const secondHoldout = await storedSplit(db, second.id, "holdout");

    // Assert: 0.2 +- about 3 standard deviations of a binomial(190, 0.2) share
    expect(first.numHoldout / 190).toBeGreaterThan(0.12);
    expect(first.numHoldout / 190).toBeLessThan(0.28);
    expect(second.id).not.toBe(first.id);
    expect(second.numHoldout).toBe(first.numHoldout);
    expect(secondHoldout.x).toEqual(firstHoldout.x);
    expect(secondHoldout.y).toEqual(firstHoldout.y);
  });

  it("replaces the federation's previous dataset and leaves other federations alone", async () => {
    // Prepare
    const db = freshDb();
    const old = await importText(db, demoCsv(), demoPlan(), { federationId: "fed-a" });
    const other = await importText(db, demoCsv(), demoPlan(), { federationId: "fed-b" });
    const otherShards = await db.shards.where("datasetId").equals(other.id).count();

    // Execute
    const replacement = await importText(db, demoCsv(), demoPlan(), { federationId: "fed-a" });

    // Assert
    expect(await db.datasets.get(old.id)).toBeUndefined();
    expect(await db.shards.where("datasetId").equals(old.id).count()).toBe(0);
    expect((await getCompleteDataset(db, "fed-a"))?.id).toBe(replacement.id);
    expect(await db.datasets.where("federationId").equals("fed-a").count()).toBe(1);
    expect((await getCompleteDataset(db, "fed-b"))?.id).toBe(other.id);
    expect(await db.shards.where("datasetId").equals(other.id).count()).toBe(otherShards);
    expect(otherShards).toBeGreaterThan(0);
  });

  it("reports progress up to the whole file", async () => {
    // Prepare
    const db = freshDb();
    const text = demoCsv();
    const reports: number[][] = [];

    // Execute
    await importText(db, text, demoPlan(), {
      chunkSize: 4096,
      onProgress: (bytesRead, totalBytes, rowsRead) => reports.push([bytesRead, totalBytes, rowsRead]),
    });

    // Assert
    expect(reports.length).toBeGreaterThan(3);
    expect(reports.at(-1)).toEqual([text.length, text.length, 190]);
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i]?.[0]).toBeGreaterThanOrEqual(reports[i - 1]?.[0] ?? 0);
      expect(reports[i]?.[2]).toBeGreaterThanOrEqual(reports[i - 1]?.[2] ?? 0);
    }
  });
});
