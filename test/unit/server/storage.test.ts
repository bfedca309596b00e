import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paramCount } from "../../../src/core/plan";
import type { Db } from "../../../src/server/db";
import { Storage, StorageError } from "../../../src/server/storage";
import { knownDelta, openTestDb, TEST_PARAMS, testPlan } from "./helpers";

describe("Storage", () => {
  let db: Db;
  let storage: Storage;
  beforeAll(async () => {
    db = await openTestDb();
    storage = new Storage(db);
  });
  afterAll(() => db.close());

  it("creates a federation with model version 0 and one typeable invite per site", async () => {
    const plan = testPlan();

    const { federation, invites } = await storage.createFederation(plan, ["North", "South", "East"]);

    expect(federation).toMatchObject({ title: plan.title, currentRound: 1, status: "training", plan });
    expect(federation.planHash).toMatch(/^[0-9a-f]{64}$/);
    expect(invites.map((i) => i.siteLabel)).toEqual(["North", "South", "East"]);
    for (const invite of invites)
      expect(invite.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    expect(await storage.getModelVersions(federation.id)).toEqual([0]);
    const initial = await storage.getModel(federation.id, 0);
    expect(initial?.length).toBe(paramCount(plan));
    // Glorot kernels are non-zero; biases start at zero.
    expect(initial?.slice(0, 6).some((x) => x !== 0)).toBe(true);
    expect(Array.from(initial?.slice(6, 8) ?? [])).toEqual([0, 0]);
    expect((await storage.getFederation(federation.id))?.plan).toEqual(plan);
  });

  it("refuses fewer invites than the plan needs per round", async () => {
    await expect(storage.createFederation(testPlan({ minSites: 3 }), ["A", "B"])).rejects.toThrow(
      /needs 3 sites per round but only 2 invites/,
    );
  });

  it("enrols an invite once, accepting lowercase and confusable letters, and stores only the token hash", async () => {
    const { invites } = await storage.createFederation(testPlan(), ["A", "B"]);
    const code = (invites[0]?.code ?? "").replace(/0/g, "o").toLowerCase().replace(/-/g, " ");

    const enrolled = await storage.enroll(code);

    expect(enrolled.siteLabel).toBe("A");
    expect(await storage.authenticate(enrolled.token)).toEqual({
      id: enrolled.siteId,
      federationId: enrolled.federationId,
      label: "A",
    });
    const stored = await db.query<{ token_hash: string }>("SELECT token_hash FROM sites WHERE id = $1", [
      enrolled.siteId,
    ]);
    expect(stored[0]?.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored[0]?.token_hash).not.toContain(enrolled.token);
    await expect(storage.enroll(invites[0]?.code ?? "")).rejects.toThrow(/already been used/);
    expect(await storage.authenticate("not-a-token")).toBeUndefined();
  });

  it("writes nothing when aggregation fails halfway through an upload", async () => {
    // Prepare: a strategy that throws once the second update is stored but before the model is.
    const failing = new Storage(db, {
      name: "failing",
      aggregateFit: () => {
        throw new Error("aggregation exploded");
      },
    });
    const { federation, invites } = await failing.createFederation(testPlan(), ["A", "B"]);
    const a = await failing.enroll(invites[0]?.code ?? "");
    const b = await failing.enroll(invites[1]?.code ?? "");
    await failing.recordUpdate(federation.id, a.siteId, 1, knownDelta(1), 5);

    // Execute
    const second = failing.recordUpdate(federation.id, b.siteId, 1, knownDelta(2), 5);

    // Assert
    await expect(second).rejects.toThrow("aggregation exploded");
    const state = await failing.getState(federation.id, b.siteId);
    expect(state).toMatchObject({
      round: 1,
      updatesThisRound: 1,
      uploadedThisRound: false,
      status: "training",
    });
    expect(await failing.getModelVersions(federation.id)).toEqual([0]);
  });

  it("rejects a second update from a site and an update for a closed round as conflicts", async () => {
    const { federation, invites } = await storage.createFederation(testPlan(), ["A", "B"]);
    const a = await storage.enroll(invites[0]?.code ?? "");
    await storage.recordUpdate(federation.id, a.siteId, 1, knownDelta(1), 5);

    const again = storage.recordUpdate(federation.id, a.siteId, 1, knownDelta(1), 5);
    const wrongRound = storage.recordUpdate(federation.id, a.siteId, 2, knownDelta(1), 5);

    await expect(again).rejects.toBeInstanceOf(StorageError);
    await expect(again).rejects.toThrow(/already uploaded its update for round 1/);
    await expect(wrongRound).rejects.toThrow(/Round 2 is not open; round 1 is/);
  });
});

describe("Storage on disk", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fedward-storage-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("keeps federations, sites, models and updates across a close and reopen", async () => {
    // Prepare: one full round on a database in a directory.
    const first = await openTestDb(dir);
    const storage = new Storage(first);
    const { federation, invites } = await storage.createFederation(testPlan(), ["A", "B"]);
    const a = await storage.enroll(invites[0]?.code ?? "");
    const b = await storage.enroll(invites[1]?.code ?? "");
    await storage.recordUpdate(federation.id, a.siteId, 1, knownDelta(1), 5);
    await storage.recordUpdate(federation.id, b.siteId, 1, knownDelta(2), 5);
    const models = [await storage.getModel(federation.id, 0), await storage.getModel(federation.id, 1)];
    await first.close();

    // Execute
    const second = await openTestDb(dir);
    const reopened = new Storage(second);

    // Assert
    expect(await reopened.getFederation(federation.id)).toEqual({ ...federation, currentRound: 2 });
    expect(await reopened.getModelVersions(federation.id)).toEqual([0, 1]);
    expect(await reopened.getModel(federation.id, 0)).toEqual(models[0]);
    expect(await reopened.getModel(federation.id, 1)).toEqual(models[1]);
    expect((await reopened.authenticate(b.token))?.id).toBe(b.siteId);
    expect((await reopened.listInvites(federation.id)).map((i) => i.siteId)).toEqual([a.siteId, b.siteId]);
    expect(models[1]?.length).toBe(TEST_PARAMS);
    await second.close();
  });
});
