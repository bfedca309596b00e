import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EnrollResponse, UploadResponse } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import { nextStep } from "../../../src/server/rounds";
import type { Storage } from "../../../src/server/storage";
import { closeTestApp, federationWithSites, knownDelta, openTestDb, updateBody, upload } from "./helpers";
import {
  clockedApp,
  deadlinePlan,
  fakeClock,
  globalPlusMean,
  MINUTE,
  modelOf,
  siteState,
} from "./rounds-helpers";

describe("the round rule (nextStep)", () => {
  const at = 1_000_000;
  it.each([
    ["waits below the quorum before the deadline", { updates: 1, deadline: at + 1 }, 3, 2, { kind: "wait" }],
    [
      "waits with the quorum for the others before the deadline",
      { updates: 2, deadline: at + 1 },
      3,
      2,
      { kind: "wait" },
    ],
    [
      "closes once every active site has sent",
      { updates: 3, deadline: at + 1 },
      3,
      2,
      { kind: "close", reason: "all-reported" },
    ],
    [
      "closes at the deadline with the quorum",
      { updates: 2, deadline: at },
      3,
      2,
      { kind: "close", reason: "deadline" },
    ],
    [
      "closes at quorum without a deadline",
      { updates: 2, deadline: null },
      3,
      2,
      { kind: "close", reason: "quorum" },
    ],
    ["waits without a deadline below the quorum", { updates: 1, deadline: null }, 3, 2, { kind: "wait" }],
    [
      "does not close when every active site sent but they are fewer than the quorum",
      { updates: 1, deadline: at + 1 },
      1,
      2,
      { kind: "wait" },
    ],
    [
      "extends a passed deadline short of the quorum by whole steps",
      { updates: 1, deadline: at - 7 },
      3,
      2,
      { kind: "extend", deadline: at + 3, steps: 2 },
    ],
  ] as const)("%s", (_name, round, active, minSites, expected) => {
    expect(nextStep(round, active, minSites, at, 5)).toEqual(expected);
  });

  it("drops an admin's deadline that passed short of the quorum on a plan without one", () => {
    expect(nextStep({ updates: 1, deadline: at }, 3, 2, at, undefined)).toEqual({ kind: "drop-deadline" });
  });
});

describe("round lifecycle with deadlines", () => {
  const clock = fakeClock();
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    ({ db, storage, app } = await clockedApp(clock));
  });
  afterAll(() => closeTestApp({ app, db }));

  async function threeSites() {
    const { federation, sites } = await federationWithSites(app, storage, deadlinePlan(), 3);
    return { federation, sites: sites as [EnrollResponse, EnrollResponse, EnrollResponse] };
  }

  it("counts every update that arrives before the deadline and closes when every active site has sent", async () => {
    // Prepare
    const { sites } = await threeSites();
    const [a, b, c] = sites;
    const deltas = [knownDelta(1), knownDelta(-2), knownDelta(0.5)];
    const global = await modelOf(app, a, 0);

    // Execute: two sites, the quorum, then the third before the deadline.
    const replies: UploadResponse[] = [];
    for (const [i, site] of sites.entries()) {
      const response = await upload(app, site, 1, updateBody(1, deltas[i] as Float32Array));
      expect(response.statusCode, response.body).toBe(202);
      replies.push(response.json<UploadResponse>());
      if (i === 1) expect(await siteState(app, c)).toMatchObject({ round: 1, waitingFor: "sites" });
      clock.advance(MINUTE);
    }

    // Assert: the third update counted too (no more "the first minSites, the others 409").
    expect(replies.map((r) => [r.updatesThisRound, r.aggregated])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(await modelOf(app, b, 1)).toEqual(globalPlusMean(global, deltas));
    expect(await siteState(app, a)).toMatchObject({ round: 2, updatesThisRound: 0, waitingFor: "quorum" });
  });

  it("closes at the deadline with the quorum, without any request, and refuses a late update with the reason", async () => {
    // Prepare: c withholds its update (or closed its tab); a and b send theirs.
    const { federation, sites } = await threeSites();
    const [a, b, c] = sites;
    const global = await modelOf(app, a, 0);
    const deltas = [knownDelta(3), knownDelta(-1)];
    await upload(app, a, 1, updateBody(1, deltas[0] as Float32Array));
    await upload(app, b, 1, updateBody(1, deltas[1] as Float32Array));
    const before = await siteState(app, c);

    // Execute: the deadline passes; the coordinator's clock settles it before anyone asks.
    clock.advance(10 * MINUTE);
    await storage.settleDueRounds();

    // Assert
    expect(before).toMatchObject({
      round: 1,
      deadline: new Date(Date.parse(before.serverTime) + 10 * MINUTE).toISOString(),
      waitingFor: "sites",
      updatesThisRound: 2,
      sitesActive: 3,
    });
    expect(await storage.getFederation(federation.id)).toMatchObject({ currentRound: 2 });
    expect(await modelOf(app, a, 1)).toEqual(globalPlusMean(global, deltas));
    const late = await upload(app, c, 1, updateBody(1, knownDelta(2)));
    expect(late.statusCode).toBe(409);
    expect(late.json().message).toMatch(
      /^Round 1 is not open: it closed at its deadline at .*, before this update arrived, so the update was not counted\. Round 2 is open/,
    );
    const stateC = await siteState(app, c, 1);
    expect(stateC.myUpload).toMatchObject({
      round: 1,
      status: "refused",
      statusCode: 409,
      modelVersion: null,
    });
    expect(stateC).toMatchObject({
      round: 2,
      deadline: new Date(clock.now + 10 * MINUTE).toISOString(),
      deadlineExtensions: 0,
    });
  });

  it("extends a deadline that passes short of the quorum by the plan's rule and says why it waits", async () => {
    // Prepare
    const { sites } = await threeSites();
    const [a, b, c] = sites;
    const opened = clock.now;
    await upload(app, a, 1, updateBody(1, knownDelta(1)));

    // Execute and assert: 12 minutes in, one step of 5 minutes; 26 minutes in, three more.
    clock.advance(12 * MINUTE);
    expect(await siteState(app, b)).toMatchObject({
      round: 1,
      deadline: new Date(opened + 15 * MINUTE).toISOString(),
      deadlineExtensions: 1,
      waitingFor: "quorum",
      updatesThisRound: 1,
    });
    clock.advance(14 * MINUTE);
    await storage.settleDueRounds();
    expect(await siteState(app, b)).toMatchObject({
      round: 1,
      deadline: new Date(opened + 30 * MINUTE).toISOString(),
      deadlineExtensions: 4,
    });
    // b reaches the quorum; c still has not sent, so the round waits for it until the deadline.
    expect((await upload(app, b, 1, updateBody(1, knownDelta(2)))).json()).toMatchObject({
      aggregated: false,
    });
    expect(await siteState(app, c)).toMatchObject({ round: 1, waitingFor: "sites" });
    clock.advance(4 * MINUTE);
    expect(await siteState(app, c)).toMatchObject({ round: 2, modelVersion: 1 });
  });

  it("refuses an update that arrives after the deadline even before anything settled the round", async () => {
    // Prepare
    const { sites } = await threeSites();
    const [a, b, c] = sites;
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    await upload(app, b, 1, updateBody(1, knownDelta(2)));

    // Execute: c's upload is the first request after the deadline.
    clock.advance(10 * MINUTE + 1);
    const late = await upload(app, c, 1, updateBody(1, knownDelta(3)));

    // Assert: the round closed with a and b (the refusal did not roll the close back).
    expect(late.statusCode).toBe(409);
    expect(await siteState(app, a)).toMatchObject({ round: 2, modelVersion: 1 });
    expect((await siteState(app, a, 1)).myUpload).toMatchObject({ status: "counted", modelVersion: 1 });
  });

  it("finishes the federation when every round closes at its deadline", async () => {
    const { federation, sites } = await threeSites();
    const [a, b] = sites;

    for (let round = 1; round <= 3; round++) {
      await upload(app, a, round, updateBody(round, knownDelta(round)));
      await upload(app, b, round, updateBody(round, knownDelta(-round)));
      clock.advance(10 * MINUTE);
      await storage.settleDueRounds();
    }

    expect(await storage.getFederation(federation.id)).toMatchObject({ status: "done", currentRound: 4 });
    expect(await siteState(app, a)).toMatchObject({ status: "done", deadline: null, waitingFor: null });
  });
});

describe("round deadlines across a restart", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fedward-rounds-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("keeps the deadline in the database and closes the round at it after the coordinator restarts", async () => {
    // Prepare: a round with the quorum, then the coordinator stops before the deadline.
    const clock = fakeClock();
    const first = await clockedApp(clock, await openTestDb(dir));
    const { federation, sites } = await federationWithSites(first.app, first.storage, deadlinePlan(), 3);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    const global = await modelOf(first.app, a, 0);
    const deltas = [knownDelta(1.5), knownDelta(-0.5)];
    await upload(first.app, a, 1, updateBody(1, deltas[0] as Float32Array));
    await upload(first.app, b, 1, updateBody(1, deltas[1] as Float32Array));
    const deadline = (await siteState(first.app, a)).deadline;
    await closeTestApp(first);

    // Execute: it starts again after the deadline.
    clock.advance(11 * MINUTE);
    const second = await clockedApp(clock, await openTestDb(dir));
    const state = await siteState(second.app, b);

    // Assert
    expect(deadline).toBe(new Date(clock.now - MINUTE).toISOString());
    expect(state).toMatchObject({ round: 2, modelVersion: 1 });
    expect(await modelOf(second.app, b, 1)).toEqual(globalPlusMean(global, deltas));
    expect(await second.storage.getModelVersions(federation.id)).toEqual([0, 1]);
    await closeTestApp(second);
  });
});
