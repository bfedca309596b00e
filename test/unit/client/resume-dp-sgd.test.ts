// fake-indexeddb stands in for the browser's IndexedDB; resumePoint is the page's decision alone (the
// training worker that writes checkpoints is covered by test/unit/workers/dp-sgd-worker.test.ts).
import "fake-indexeddb/auto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RoundStart, resumePoint } from "../../../src/client/resume";
import { type CheckpointRow, type FedwardDb, openDb } from "../../../src/store/db";
import { checkpointOf, saveCheckpoint } from "../../../src/store/round-state";

let db: FedwardDb;

beforeEach(() => {
  db = openDb(`fedward-resume-dp-${crypto.randomUUID()}`);
});

afterEach(() => {
  db.close();
});

/** Round 3 of a dp-sgd plan with 40 steps per round, as the loop asks. */
const start: RoundStart = {
  federationId: "fed",
  planHash: "plan-h",
  datasetId: "data-1",
  round: 3,
  rounds: 5,
  modelVersion: 2,
  epochs: 40,
  mechanism: "dp-sgd",
  optimizer: "momentum",
  count: 4,
};

function saved(over: Partial<CheckpointRow> = {}): CheckpointRow {
  return {
    federationId: "fed",
    round: 3,
    modelVersion: 2,
    planHash: "plan-h",
    datasetId: "data-1",
    epoch: 12,
    epochs: 40,
    mechanism: "dp-sgd",
    optimizer: "momentum",
    weights: Float32Array.of(0.1, 0.2, 0.3, 0.4),
    loss: 0.6,
    savedAt: Date.now(),
    ...over,
  };
}

describe("resuming a dp-sgd round", () => {
  it("continues a dp-sgd checkpoint of the same round after its steps, and says so in steps", async () => {
    // Prepare
    await saveCheckpoint(db, saved());

    // Execute
    const decision = await resumePoint(db, start);

    // Assert
    expect(decision.checkpoint.resume).toEqual({
      epoch: 12,
      weights: Float32Array.of(0.1, 0.2, 0.3, 0.4),
      loss: 0.6,
    });
    expect(decision.text).toBe(
      "Round 3 of 5: continuing the training saved on this computer after step 12 of 40 (28 left)…",
    );
  });

  it.each([
    ["a site-update checkpoint (epochs, not steps)", { mechanism: undefined, epochs: 40 }],
    ["another number of steps per round", { epochs: 30 }],
    ["another optimizer", { optimizer: "sgd" as const }],
  ])("drops %s and starts the round over", async (_what, over) => {
    // Prepare
    await saveCheckpoint(db, saved(over));

    // Execute
    const decision = await resumePoint(db, start);

    // Assert
    expect(decision.checkpoint.resume).toBeUndefined();
    expect(decision.text).toMatch(/made under another plan, so round 3 starts over/);
    expect(await checkpointOf(db, "fed")).toBeUndefined();
  });

  it("drops a dp-sgd checkpoint for a site-update round", async () => {
    await saveCheckpoint(db, saved());
    const { mechanism: _, ...siteUpdate } = start;
    const decision = await resumePoint(db, { ...siteUpdate, epochs: 40 });
    expect(decision.checkpoint.resume).toBeUndefined();
  });
});
