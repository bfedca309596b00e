// The site's round loop against the round lifecycle: rounds that close while the site trains or uploads,
// receipts, refused releases and the budget, and a plan hash that changed. fake-indexeddb stands in for
// IndexedDB and a fake trainer (core's real mechanism on a made-up delta) for the training worker; the
// coordinator is the real one (Fastify, PGlite) on a loopback port. Site B is played in process (inject).
import "fake-indexeddb/auto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkerBridge } from "../../../src/client/bridges";
import { CoordinatorClient } from "../../../src/client/coordinator";
import { type FederationEvent, runFederation } from "../../../src/client/federation";
import { type Plan, paramCount } from "../../../src/core/plan";
import { exactGaussianEpsilon } from "../../../src/core/privacy/accounting";
import { privatizeDelta } from "../../../src/core/privacy/mechanism";
import type { EnrollResponse } from "../../../src/core/protocol";
import { encodeVector, WireKind } from "../../../src/core/wire";
import { type EnrollmentRow, type FedwardDb, openDb } from "../../../src/store/db";
import { ledgerOf } from "../../../src/store/ledger";
import type { TrainWorkerApi } from "../../../workers/train.worker";
import { closeTestApp, openTestApp, type TestApp, testPlan, upload } from "../server/helpers";
import { enrollSites } from "./enroll";

let server: TestApp;
let baseUrl: string;
let db: FedwardDb;
const realFetch = globalThis.fetch;
const epsilon = (releases: number) => exactGaussianEpsilon(new Array(releases).fill(0.5), 1e-5);

beforeEach(async () => {
  server = await openTestApp();
  baseUrl = await server.app.listen({ port: 0, host: "127.0.0.1" });
  db = openDb(`fedward-test-${crypto.randomUUID()}`);
});

afterEach(async () => {
  vi.unstubAllGlobals();
  db.close();
  await closeTestApp(server);
});

/** Site A (the page, in `db`) and site B (played from Node), one federation. */
async function sitesAB(plan: Plan): Promise<{ a: EnrollmentRow; b: EnrollmentRow }> {
  const [a, b] = await enrollSites(server, baseUrl, db, plan, ["Site A", "Site B"]);
  return { a: a as EnrollmentRow, b: b as EnrollmentRow };
}

/** Site B's update for a round (zeros), sent in process. */
async function sendFromB(b: EnrollmentRow, plan: Plan, round: number) {
  const values = new Float32Array(paramCount(plan));
  const body = Buffer.from(encodeVector({ kind: WireKind.update, round, numExamples: 0, values }));
  const response = await upload(server.app, b as unknown as EnrollResponse, round, body);
  expect(response.statusCode, response.body).toBe(202);
}

/** The fake training worker; `duringFit(round)` runs while a round trains (the world moves meanwhile). */
function fakeTrainer(plan: Plan, duringFit: (round: number) => Promise<void> = async () => {}) {
  const fits: number[] = [];
  const api = {
    init: async () => ({ backend: "cpu", reason: "fake trainer of a unit test", measured: [] }),
    evaluate: async () => ({ accuracy: 0.5, loss: 0.7, numExamples: 10 }),
    fit: async (
      global: Float32Array,
      _dataset: string,
      _progress: unknown,
      checkpoint: { round: number },
    ) => {
      fits.push(checkpoint.round);
      await duringFit(checkpoint.round);
      return {
        numExamples: 10,
        metrics: { loss: 0.5, examplesPerSecond: 1000 },
        released: privatizeDelta(new Float32Array(global.length).fill(0.01), plan.privacy),
      };
    },
  };
  const bridge = { api, guard: <T>(work: Promise<T>) => work } as unknown as WorkerBridge<TrainWorkerApi>;
  return { bridge, fits };
}

/**
 * Site A's update uploads as they leave the page; `before(round)` runs before one is handed to the
 * coordinator and `after(round)` decides what the page gets back (the reply, or a lost one).
 */
function watchUploads(
  hooks: {
    before?: (round: number) => Promise<void>;
    loseReplyOf?: (round: number, attempt: number) => boolean;
  } = {},
) {
  const rounds: number[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const match = /\/rounds\/(\d+)\/update$/.exec(String(input));
    if (!match || init?.method !== "POST") return realFetch(input, init);
    const round = Number(match[1]);
    rounds.push(round);
    await hooks.before?.(round);
    const response = await realFetch(input, init);
    if (hooks.loseReplyOf?.(round, rounds.filter((r) => r === round).length)) {
      throw new TypeError("fetch failed (the connection dropped before the reply)");
    }
    return response;
  });
  return rounds;
}

function run(enrollment: EnrollmentRow, bridge: WorkerBridge<TrainWorkerApi>) {
  const events: FederationEvent[] = [];
  const done = runFederation({
    enrollment,
    datasetId: "unused-by-the-fake-trainer",
    client: new CoordinatorClient(baseUrl, enrollment.token),
    trainer: bridge,
    db,
    backend: "cpu",
    onEvent: (e) => events.push(e),
    signal: new AbortController().signal,
    pollMs: 20,
  });
  return { done, events };
}

const statusTexts = (events: FederationEvent[]) =>
  events.flatMap((e) => (e.type === "status" ? [e.text] : []));

describe("a round that closes while the site works on it", () => {
  it("sends nothing when the round closed while the site trained, and records no release for it", async () => {
    // Prepare: one site is enough; B closes round 1 while A trains it.
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { a, b } = await sitesAB(plan);
    const { bridge, fits } = fakeTrainer(plan, async (round) => {
      if (round === 1) await sendFromB(b, plan, 1);
    });
    const uploads = watchUploads();

    // Execute
    await run(a, bridge).done;

    // Assert: round 1 trained but never sent; round 2 trained and sent, as this site's first release.
    expect(fits).toEqual([1, 2]);
    expect(uploads).toEqual([2]);
    const { releases, spent } = await ledgerOf(db, a.federationId, 1e-5);
    expect(releases.map((r) => r.round)).toEqual([2]);
    expect(releases[0]?.epsilonAfter).toBe(epsilon(1));
    expect(spent).toBe(epsilon(1));
    expect((await db.rounds.get([a.federationId, 1]))?.notSent).toBe("round closed");
  });

  it("records a 409 after the round moved on as refused, never as accepted, and the refused release still counts against the budget", async () => {
    // Prepare: B closes round 1 just before A's upload reaches the coordinator.
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { a, b } = await sitesAB(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads({
      before: async (round) => {
        if (round === 1) await sendFromB(b, plan, 1);
      },
    });

    // Execute
    const { done } = run(a, bridge);
    await done;

    // Assert: round 1 was refused (with the coordinator's receipt), round 2 accepted.
    expect(fits).toEqual([1, 2]);
    expect(uploads).toEqual([1, 2]);
    const [first, second] = (await ledgerOf(db, a.federationId, 1e-5)).releases;
    expect(first?.sentAt).toBeUndefined();
    expect(first?.refused).toMatch(/^Round 1 is not open: it closed as soon as enough sites had sent/);
    expect(first?.receipt).toMatchObject({ round: 1, status: "refused", statusCode: 409 });
    expect(second?.sentAt).toBeGreaterThan(0);
    expect(second?.receipt).toMatchObject({ round: 2, status: "counted", modelVersion: 2 });
    expect((await db.rounds.get([a.federationId, 1]))?.notSent).toMatch(
      /^refused by the coordinator: Round 1/,
    );
    // The refused release left this site: it is spent, so round 2 is this site's second release.
    expect(second?.epsilonAfter).toBe(epsilon(2));
    expect((await ledgerOf(db, a.federationId, 1e-5)).spent).toBe(epsilon(2));
  });

  it("learns from the receipt that a round-closing upload whose reply was lost was counted", async () => {
    // Prepare: B sent first; A's upload closes the round and its reply is lost once.
    const plan = testPlan({ minSites: 2, rounds: 1 });
    const { a, b } = await sitesAB(plan);
    await sendFromB(b, plan, 1);
    const { bridge } = fakeTrainer(plan);
    const uploads = watchUploads({ loseReplyOf: (_round, attempt) => attempt === 1 });

    // Execute
    const { done, events } = run(a, bridge);
    await done;

    // Assert: the retry was refused (409), and the receipt says the first attempt counted in model version 1.
    expect(uploads).toEqual([1, 1]);
    const [release] = (await ledgerOf(db, a.federationId, 1e-5)).releases;
    expect(release?.sentAt).toBeGreaterThan(0);
    expect(release?.refused).toBeUndefined();
    expect(release?.receipt).toMatchObject({ round: 1, status: "counted", modelVersion: 1, statusCode: 202 });
    expect((await db.rounds.get([a.federationId, 1]))?.uploadedAt).toBeGreaterThan(0);
    expect(events.some((e) => e.type === "done")).toBe(true);
  });

  it("keeps the coordinator's receipt in the ledger: accepted, then counted in the model version once the round closed", async () => {
    // Prepare: both sites needed; B sends a moment after A.
    const plan = testPlan({ minSites: 2, rounds: 1 });
    const { a, b } = await sitesAB(plan);
    const { bridge } = fakeTrainer(plan);
    const seen: string[] = [];
    watchUploads({
      before: async () => {
        setTimeout(() => void sendFromB(b, plan, 1), 200);
      },
    });

    // Execute
    const { done, events } = run(a, bridge);
    await done;

    // Assert
    for (const e of events) if (e.type === "privacy") seen.push(e.releases[0]?.receipt?.status ?? "none");
    expect(seen).toContain("accepted");
    const [release] = (await ledgerOf(db, a.federationId, 1e-5)).releases;
    expect(release?.receipt).toMatchObject({ round: 1, status: "counted", modelVersion: 1 });
    expect(statusTexts(events)).toContain(
      "Round 1 of 1: update sent. 1 of 2 sites have sent their update; the round closes as soon as 2 have.",
    );
  });

  it("tells the site how long the round waits, by the coordinator's deadline", async () => {
    // Prepare: a 10-minute deadline; A alone is the quorum and B sends later.
    const plan = testPlan({ minSites: 1, rounds: 1, roundDeadline: { minutes: 10 } });
    const { a, b } = await sitesAB(plan);
    const { bridge } = fakeTrainer(plan);
    watchUploads({
      before: async () => {
        setTimeout(() => void sendFromB(b, plan, 1), 200);
      },
    });

    // Execute
    const { done, events } = run(a, bridge);
    await done;

    // Assert
    expect(statusTexts(events)).toContainEqual(
      expect.stringMatching(
        /^Round 1 of 1: update sent\. 1 of 2 sites have sent their update; the round closes when the other site has sent or at .* \(in (9 min \d+ s|10 min)\), whichever comes first\.$/,
      ),
    );
  });
});

describe("a plan hash from the coordinator that is not the approved one", () => {
  const otherHash = "f".repeat(64);

  it("stops the site before it trains or sends anything", async () => {
    // Prepare
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { a } = await sitesAB(plan);
    await server.db.query("UPDATE federations SET plan_hash = $2 WHERE id = $1", [a.federationId, otherHash]);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();

    // Execute
    const { done } = run(a, bridge);

    // Assert
    await expect(done).rejects.toThrow(
      new RegExp(`now runs a plan with SHA-256 ${otherHash}, not the one approved here \\(${a.planHash}\\)`),
    );
    expect(fits).toEqual([]);
    expect(uploads).toEqual([]);
    expect(await db.releases.count()).toBe(0);
  });

  it("stops before sending a round whose plan changed while it trained", async () => {
    // Prepare: the coordinator's plan changes during round 2's training.
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { a } = await sitesAB(plan);
    const { bridge, fits } = fakeTrainer(plan, async (round) => {
      if (round === 2) {
        await server.db.query("UPDATE federations SET plan_hash = $2 WHERE id = $1", [
          a.federationId,
          otherHash,
        ]);
      }
    });
    const uploads = watchUploads();

    // Execute
    const { done } = run(a, bridge);

    // Assert
    await expect(done).rejects.toThrow(/now runs a plan with SHA-256 f+, not the one approved here/);
    expect(fits).toEqual([1, 2]);
    expect(uploads).toEqual([1]);
    expect((await ledgerOf(db, a.federationId, 1e-5)).releases.map((r) => r.round)).toEqual([1]);
  });
});
