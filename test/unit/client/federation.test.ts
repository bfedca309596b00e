// In this unit test, fake-indexeddb stands in for the browser's IndexedDB and a fake training worker (core's
// real mechanism on a made-up delta, no tfjs) stands in for workers/train.worker.ts; the coordinator is the
// real one (Fastify, PGlite) on a loopback port, reached with Node's fetch. test/e2e covers the browser.
import "fake-indexeddb/auto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkerBridge } from "../../../src/client/bridges";
import { CoordinatorClient } from "../../../src/client/coordinator";
import { type FederationEvent, runFederation } from "../../../src/client/federation";
import { type Plan, paramCount, planHash } from "../../../src/core/plan";
import { exactGaussianEpsilon } from "../../../src/core/privacy/accounting";
import { privatizeDelta } from "../../../src/core/privacy/mechanism";
import { sha256Hex } from "../../../src/core/sha256";
import { encodeVector, WireKind } from "../../../src/core/wire";
import { type EnrollmentRow, type FedwardDb, openDb, type ReleaseRow } from "../../../src/store/db";
import { ledgerOf } from "../../../src/store/ledger";
import type { TrainWorkerApi } from "../../../workers/train.worker";
import { closeTestApp, openTestApp, type TestApp, testPlan } from "../server/helpers";
import { enrollSites } from "./enroll";

let server: TestApp;
let baseUrl: string;
let db: FedwardDb;
const realFetch = globalThis.fetch;

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

/** A federation of one site (minSites 1) and that site's enrollment, as the page stores it. */
async function enrolledSite(plan: Plan): Promise<EnrollmentRow> {
  return (await enrollSites(server, baseUrl, db, plan))[0] as EnrollmentRow;
}

/** The fake training worker: each fit releases core's mechanism applied to a fixed made-up delta. */
function fakeTrainer(plan: Plan) {
  const fits: number[] = [];
  const api = {
    init: async () => ({ backend: "cpu", reason: "fake trainer of a unit test", measured: [] }),
    evaluate: async () => ({ accuracy: 0.5, loss: 0.7, numExamples: 10 }),
    fit: async (global: Float32Array) => {
      fits.push(global.length);
      const delta = new Float32Array(global.length).fill(0.01);
      return {
        numExamples: 10,
        metrics: { loss: 0.5, examplesPerSecond: 1000 },
        released: privatizeDelta(delta, plan.privacy),
      };
    },
  };
  const bridge = { api, guard: <T>(work: Promise<T>) => work } as unknown as WorkerBridge<TrainWorkerApi>;
  return { bridge, fits };
}

interface Upload {
  round: number;
  body: Uint8Array;
  /** The ledger's row for the round at the moment the request left. */
  ledgerSha256: string | undefined;
}

/** Watches update uploads on their way out; `failFirst` makes the first one fail like a dropped network. */
function watchUploads(options: { failFirst?: "network" | "abort"; abort?: AbortController } = {}) {
  const uploads: Upload[] = [];
  let failed = false;
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const match = /\/rounds\/(\d+)\/update$/.exec(url);
    if (match && init?.method === "POST") {
      const round = Number(match[1]);
      const body = new Uint8Array(init.body as Uint8Array);
      const federationId = decodeURIComponent(url.split("/federations/")[1]?.split("/")[0] ?? "");
      const row = await db.releases.get([federationId, round]);
      uploads.push({ round, body, ledgerSha256: row?.sha256 });
      if (options.failFirst && !failed) {
        failed = true;
        if (options.failFirst === "abort") {
          options.abort?.abort(new DOMException("The page was closed.", "AbortError"));
          throw new DOMException("The page was closed.", "AbortError");
        }
        throw new TypeError("fetch failed (connection reset)");
      }
    }
    return realFetch(input, init);
  });
  return uploads;
}

/** The round loop as the page runs it; `approveUpload` is the page's upload review, when it is on. */
function run(
  enrollment: EnrollmentRow,
  bridge: WorkerBridge<TrainWorkerApi>,
  signal: AbortSignal,
  approveUpload?: (release: ReleaseRow) => Promise<boolean>,
) {
  const events: FederationEvent[] = [];
  const done = runFederation({
    enrollment,
    datasetId: "unused-by-the-fake-trainer",
    client: new CoordinatorClient(baseUrl, enrollment.token),
    trainer: bridge,
    db,
    backend: "cpu",
    onEvent: (e) => events.push(e),
    signal,
    pollMs: 20,
    ...(approveUpload ? { approveUpload } : {}),
  });
  return { done, events };
}

describe("the site's privacy ledger", () => {
  it("holds every release, with its epsilon, before its bytes leave, and the coordinator gets those bytes", async () => {
    // Prepare
    const plan = testPlan({ minSites: 1, rounds: 3 });
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();

    // Execute
    await run(enrollment, bridge, new AbortController().signal).done;

    // Assert
    const ledger = await db.releases.where("federationId").equals(enrollment.federationId).sortBy("round");
    expect(ledger.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(fits).toHaveLength(3);
    expect(uploads).toHaveLength(3);
    for (const [i, upload] of uploads.entries()) {
      const row = ledger[i];
      expect(upload.ledgerSha256).toBe(row?.sha256);
      expect(await sha256Hex(upload.body)).toBe(row?.sha256);
      expect(row?.sentAt).toBeGreaterThan(0);
      expect(row?.body).toBeUndefined(); // accepted: only its size and SHA-256 stay
      expect(row?.epsilonAfter).toBe(exactGaussianEpsilon(new Array(i + 1).fill(0.5), 1e-5));
      expect(row).toMatchObject({
        noiseMultiplier: 0.5,
        clipNorm: 1,
        sigma: 1,
        delta: 1e-5,
        bytes: upload.body.length,
      });
      expect(row?.planHash).toBe(enrollment.planHash);
    }
    expect(paramCount(plan) * 4 + 20).toBe(uploads[0]?.body.length);
  });

  it("re-sends the very same bytes when an upload fails on the network", async () => {
    // Prepare
    const plan = testPlan({ minSites: 1, rounds: 1 });
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads({ failFirst: "network" });

    // Execute
    await run(enrollment, bridge, new AbortController().signal).done;

    // Assert
    expect(fits).toHaveLength(1);
    expect(uploads).toHaveLength(2);
    expect(uploads[1]?.body).toEqual(uploads[0]?.body);
    expect(await db.releases.count()).toBe(1);
  });

  it("after the page is closed mid-upload, sends the recorded release again and never trains that round twice", async () => {
    // Prepare: the first run's upload dies with the page; the second run is the page opened again
    const plan = testPlan({ minSites: 1, rounds: 1 });
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const closing = new AbortController();
    const uploads = watchUploads({ failFirst: "abort", abort: closing });
    const first = run(enrollment, bridge, closing.signal);
    await expect(first.done).rejects.toThrow(/closed/);
    const recorded = await db.releases.get([enrollment.federationId, 1]);

    // Execute
    const second = run(enrollment, bridge, new AbortController().signal);
    await second.done;

    // Assert
    expect(fits).toHaveLength(1);
    expect(uploads).toHaveLength(2);
    expect(uploads[1]?.body).toEqual(uploads[0]?.body);
    expect(await sha256Hex(uploads[1]?.body as Uint8Array)).toBe(recorded?.sha256);
    expect((await db.releases.get([enrollment.federationId, 1]))?.sentAt).toBeGreaterThan(0);
    expect(second.events.some((e) => e.type === "done")).toBe(true);
  });
});

describe("the site's privacy budget", () => {
  it("stops taking part, and says so, before a round that would spend more than the budget", async () => {
    // Prepare: z = 0.5 gives epsilon 9.997 after one release and 15.46 after two (delta 1e-5); budget 12
    const plan = testPlan({ minSites: 1, rounds: 3 });
    plan.privacy.epsilonBudget = 12;
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();

    // Execute
    const { done, events } = run(enrollment, bridge, new AbortController().signal);
    await done;

    // Assert
    expect(fits).toHaveLength(1);
    expect(uploads.map((u) => u.round)).toEqual([1]);
    expect(await db.releases.count()).toBe(1);
    const stopped = events.find((e) => e.type === "stopped");
    expect(stopped?.type === "stopped" && stopped.text).toMatch(
      /does not take part in round 2: its privacy budget would run out\. .*ε = 9\.\d+; .* ε = 15\.\d+, over the plan's budget of ε = 12\.00/,
    );
    const round2 = await db.rounds.get([enrollment.federationId, 2]);
    expect(round2?.notSent).toMatch(/^privacy budget \(ε would reach 15\.\d+ > 12\.00\)$/);
    const state = await new CoordinatorClient(baseUrl, enrollment.token).state(enrollment.federationId);
    expect(state.round).toBe(2);
    expect(state.uploadedThisRound).toBe(false);
  });

  it("refuses at once when a single round is over the budget, and nothing leaves", async () => {
    // Prepare
    const plan = testPlan({ minSites: 1, rounds: 2 });
    plan.privacy.epsilonBudget = 1;
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();

    // Execute
    const { done, events } = run(enrollment, bridge, new AbortController().signal);
    await done;

    // Assert
    expect(fits).toHaveLength(0);
    expect(uploads).toHaveLength(0);
    expect(await db.releases.count()).toBe(0);
    expect(events.some((e) => e.type === "stopped")).toBe(true);
  });
});

describe("the site's upload review", () => {
  /** A federation of two sites where one is enough per round: site B (here, in Node) can close a round alone. */
  async function twoSites(plan: Plan) {
    const { invites } = await server.storage.createFederation(plan, ["Site A", "Site B"]);
    const a = await new CoordinatorClient(baseUrl).enroll(invites[0]?.code as string);
    const b = await new CoordinatorClient(baseUrl).enroll(invites[1]?.code as string);
    const enrollment: EnrollmentRow = {
      federationId: a.federationId,
      coordinatorUrl: baseUrl,
      siteId: a.siteId,
      siteLabel: a.siteLabel,
      token: a.token,
      plan,
      planHash: await planHash(plan),
      enrolledAt: Date.now(),
      reviewUploads: true,
    };
    await db.enrollments.put(enrollment);
    const siteB = new CoordinatorClient(baseUrl, b.token);
    const fromB = new Set<string>();
    /** Site B's update for a round (zeros), which closes it. */
    const closeRound = async (round: number) => {
      const values = new Float32Array(paramCount(plan));
      const body = encodeVector({ kind: WireKind.update, round, numExamples: 0, values });
      fromB.add(await sha256Hex(body));
      await siteB.upload(a.federationId, round, body);
    };
    /** The rounds of site A's uploads (site B's go through the same fetch). */
    const roundsSentByA = async (uploads: Upload[]) => {
      const out: number[] = [];
      for (const u of uploads) if (!fromB.has(await sha256Hex(u.body))) out.push(u.round);
      return out;
    };
    return { enrollment, closeRound, roundsSentByA };
  }

  it("sends what the review approves, withholds what it declines, and counts only what was sent", async () => {
    // Prepare: approve round 1, decline round 2 (site B then closes round 2 alone)
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { enrollment, closeRound, roundsSentByA } = await twoSites(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();
    const reviewedRows: ReleaseRow[] = [];
    const review = async (release: ReleaseRow) => {
      reviewedRows.push(release);
      if (release.round === 1) return true;
      setTimeout(() => void closeRound(release.round), 50);
      return false;
    };

    // Execute
    const { done, events } = run(enrollment, bridge, new AbortController().signal, review);
    await done;

    // Assert
    expect(fits).toHaveLength(2);
    expect(reviewedRows.map((r) => r.round)).toEqual([1, 2]);
    expect(await roundsSentByA(uploads)).toEqual([1]);
    const [first, second] = await db.releases
      .where("federationId")
      .equals(enrollment.federationId)
      .sortBy("round");
    // The review saw the ledger's row, bytes included, before anything left.
    expect(await sha256Hex(reviewedRows[0]?.body as Uint8Array)).toBe(first?.sha256);
    expect(await sha256Hex(reviewedRows[1]?.body as Uint8Array)).toBe(second?.sha256);
    expect(first?.approvedAt).toBeGreaterThan(0);
    expect(first?.sentAt).toBeGreaterThan(0);
    expect(second?.withheldAt).toBeGreaterThan(0);
    expect(second?.body).toBeUndefined();
    expect(second?.sentAt).toBeUndefined();
    const { spent } = await ledgerOf(db, enrollment.federationId, 1e-5);
    expect(spent).toBe(exactGaussianEpsilon([0.5], 1e-5));
    expect((await db.rounds.get([enrollment.federationId, 2]))?.notSent).toBe("withheld by this site");
    expect(events.some((e) => e.type === "done")).toBe(true);
  });

  it("never sends a declined release later, even after the page is opened again", async () => {
    // Prepare: round 1 is declined, then the page closes while the site waits for the others
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const { enrollment, closeRound, roundsSentByA } = await twoSites(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const uploads = watchUploads();
    const closing = new AbortController();
    const first = run(enrollment, bridge, closing.signal, async () => {
      setTimeout(() => closing.abort(new DOMException("The page was closed.", "AbortError")), 100);
      return false;
    });
    await expect(first.done).rejects.toMatchObject({ name: "AbortError" });
    const reviewedAgain: number[] = [];

    // Execute: the page is opened again and approves everything; site B closes round 1 meanwhile
    const second = run(enrollment, bridge, new AbortController().signal, async (release) => {
      reviewedAgain.push(release.round);
      return true;
    });
    setTimeout(() => void closeRound(1), 100);
    await second.done;

    // Assert
    expect(fits).toHaveLength(2);
    expect(reviewedAgain).toEqual([2]);
    expect(await roundsSentByA(uploads)).toEqual([2]);
    const round1 = await db.releases.get([enrollment.federationId, 1]);
    const round2 = await db.releases.get([enrollment.federationId, 2]);
    expect(round1?.withheldAt).toBeGreaterThan(0);
    expect(round1?.sentAt).toBeUndefined();
    // The withheld release counted against no budget: round 2 was checked as this site's first release.
    expect(round2?.epsilonAfter).toBe(exactGaussianEpsilon([0.5], 1e-5));
    expect(round2?.sentAt).toBeGreaterThan(0);
  });
});

describe("the site's held-out metrics (plan.evaluation.reportMetrics)", () => {
  /** Records every request to the metrics route, then lets it through to the real coordinator. */
  function watchMetrics() {
    const reports: { url: string; body: unknown }[] = [];
    vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      if (/\/metrics$/.test(url)) reports.push({ url, body: JSON.parse(String(init?.body)) });
      return realFetch(input, init);
    });
    return reports;
  }

  it("sends one report per evaluated model version through the audited client when the plan asks", async () => {
    // Prepare
    const plan = testPlan({
      minSites: 1,
      rounds: 3,
      evaluation: { holdoutFraction: 0.2, reportMetrics: true },
    });
    const enrollment = await enrolledSite(plan);
    const { bridge } = fakeTrainer(plan);
    const reports = watchMetrics();
    const audit: string[] = [];
    const client = new CoordinatorClient(baseUrl, enrollment.token, (e) =>
      audit.push(`${e.method} ${e.url} ${e.status}`),
    );

    // Execute
    await runFederation({
      enrollment,
      datasetId: "unused-by-the-fake-trainer",
      client,
      trainer: bridge,
      db,
      backend: "cpu",
      onEvent: () => {},
      signal: new AbortController().signal,
      pollMs: 20,
    });

    // Assert: versions 0, 1, 2 before rounds 1–3, and the final version 3; the coordinator holds each.
    expect(reports.map((r) => r.body)).toEqual(
      [0, 1, 2, 3].map((modelVersion) => ({ modelVersion, numExamples: 10, loss: 0.7, accuracy: 0.5 })),
    );
    const metricsUrl = `${baseUrl}/api/federations/${encodeURIComponent(enrollment.federationId)}/metrics`;
    expect(audit.filter((line) => line.startsWith(`POST ${metricsUrl}`))).toEqual(
      Array.from({ length: 4 }, () => `POST ${metricsUrl} 200`),
    );
    const stored = await server.storage.admin.listMetrics(enrollment.federationId);
    expect(stored.map((v) => [v.modelVersion, v.sitesReported, v.meanAccuracy])).toEqual([
      [0, 1, 0.5],
      [1, 1, 0.5],
      [2, 1, 0.5],
      [3, 1, 0.5],
    ]);
  });

  it("sends none when the plan does not ask", async () => {
    // Prepare
    const plan = testPlan({ minSites: 1, rounds: 2 });
    const enrollment = await enrolledSite(plan);
    const { bridge, fits } = fakeTrainer(plan);
    const reports = watchMetrics();

    // Execute
    await run(enrollment, bridge, new AbortController().signal).done;

    // Assert: it trained and evaluated as usual, and no metrics request left.
    expect(fits).toHaveLength(2);
    expect(reports).toEqual([]);
  });
});
