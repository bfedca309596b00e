// fake-indexeddb stands in for the browser's IndexedDB in this unit test; the real one is covered by the
// browser e2e. It must load before Dexie so Dexie finds it.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { getCompleteDataset } from "../../../src/store/datasets";
import { type FedwardDb, MAX_PROBLEMS, SHARD_SIZE } from "../../../src/store/db";
import type { ExampleSink } from "../../../workers/import/parser";
import { readShards } from "../../../workers/import/read-shards";
import { importDataset } from "../../../workers/import/shard-writer";
import { demoCsv, demoPlan, everythingStored, freshDb, importText } from "./support";

const META = {
  federationId: "fed-a",
  planHash: "h",
  fileName: "synthetic.csv",
  numFeatures: 3,
  holdoutFraction: 0.25,
};

/** Example i (file line i + 2) has features [i, i + 0.5, -i] and label i % 2, so order is checkable. */
async function addExamples(sink: ExampleSink, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await sink.add(Float32Array.of(i, i + 0.5, -i), (i % 2) as 0 | 1, i + 2);
}

function importSynthetic(db: FedwardDb, count: number) {
  return importDataset(db, META, async (sink) => {
    await addExamples(sink, count);
    return { rowsRead: count, rowsSkipped: 0, imputed: {} };
  });
}

async function collect(db: FedwardDb, datasetId: string, split: "train" | "holdout") {
  const shards = [];
  for await (const shard of readShards(db, datasetId, split)) shards.push(shard);
  return shards;
}

describe("shard writing and reading", () => {
  it("cuts each split into shards of SHARD_SIZE that readShards yields in order", async () => {
    // Prepare
    const db = freshDb();

    // Execute
    const dataset = await importSynthetic(db, 1500);
    const train = await collect(db, dataset.id, "train");
    const holdout = await collect(db, dataset.id, "holdout");

    // Assert
    expect(dataset.numTrain + dataset.numHoldout).toBe(1500);
    expect(train.map((s) => s.index)).toEqual(train.map((_, i) => i));
    expect(train.map((s) => s.count)).toEqual([
      ...Array(Math.floor(dataset.numTrain / SHARD_SIZE)).fill(SHARD_SIZE),
      dataset.numTrain % SHARD_SIZE,
    ]);
    expect(holdout.reduce((n, s) => n + s.count, 0)).toBe(dataset.numHoldout);
    const firstFeature = [...train, ...holdout].flatMap((s) =>
      Array.from({ length: s.count }, (_, r) => s.x[r * 3] ?? -1),
    );
    expect(firstFeature.sort((a, b) => a - b)).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    const trainFirst = train.flatMap((s) => Array.from({ length: s.count }, (_, r) => s.x[r * 3] ?? -1));
    expect(trainFirst).toEqual([...trainFirst].sort((a, b) => a - b));
    expect(train[0]?.x.length).toBe(SHARD_SIZE * 3);
    expect(train[0]?.y.slice(0, 4)).toEqual(Float32Array.from(trainFirst.slice(0, 4), (i) => i % 2));
  });

  it("keeps the previous dataset visible while importing, and removes every trace of a failed import", async () => {
    // Prepare
    const db = freshDb();
    const previous = await importText(db, demoCsv(), demoPlan());
    const before = await everythingStored(db);
    const seen = { complete: "", newShards: 0 };

    // Execute
    const result = importDataset(db, META, async (sink) => {
      await addExamples(sink, 3000);
      seen.complete = (await getCompleteDataset(db, "fed-a"))?.id ?? "";
      seen.newShards = await db.shards.where("datasetId").notEqual(previous.id).count();
      throw new Error("disk on fire");
    });

    // Assert
    await expect(result).rejects.toThrow("disk on fire");
    expect(seen.complete).toBe(previous.id);
    expect(seen.newShards).toBeGreaterThan(0);
    expect(await everythingStored(db)).toBe(before);
  });

  it("stops on abort with an AbortError and writes nothing", async () => {
    // Prepare
    const db = freshDb();
    const controller = new AbortController();

    // Execute
    const result = importText(db, demoCsv(), demoPlan(), {
      chunkSize: 4096,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });

    // Assert
    await expect(result).rejects.toMatchObject({ name: "AbortError" });
    expect(await db.datasets.count()).toBe(0);
    expect(await db.shards.count()).toBe(0);
  });

  it("keeps the first MAX_PROBLEMS problems and counts them all", async () => {
    // Prepare
    const db = freshDb();
    const reported = MAX_PROBLEMS + 50;

    // Execute
    const dataset = await importDataset(db, META, async (sink) => {
      for (let line = 2; line < reported + 2; line++)
        sink.problem({ line, column: "age", message: "missing value" });
      await addExamples(sink, 1);
      return { rowsRead: reported + 1, rowsSkipped: reported, imputed: {} };
    });

    // Assert
    expect(dataset.problemCount).toBe(reported);
    expect(dataset.problems).toHaveLength(MAX_PROBLEMS);
    expect(dataset.problems.at(-1)?.line).toBe(MAX_PROBLEMS + 1);
  });

  it("refuses to go on reading a dataset that a new import replaced", async () => {
    // Prepare
    const db = freshDb();
    const old = await importSynthetic(db, 1500);
    const reader = readShards(db, old.id, "train");
    await reader.next();

    // Execute
    await importSynthetic(db, 1500);

    // Assert
    await expect(reader.next()).rejects.toThrow("a new import replaced it while it was being read");
    await expect(collect(db, old.id, "train")).rejects.toThrow("is not a complete import");
  });
});
