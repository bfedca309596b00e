import { proxy } from "comlink";
import type { BackendChoice, BackendPreference } from "../../workers/train/backends";
import type { TrainProgress } from "../../workers/train/trainer";
import type { FitRelease, TrainWorkerApi } from "../../workers/train.worker";
import { InputError } from "../core/errors";
import { dpSgdPrivacy, isDpSgd, type Plan, paramCount, siteUpdateTraining } from "../core/plan";
import { type BudgetCheck, checkBudget, formatEpsilon, refusalText } from "../core/privacy/budget";
import { dpSgdGrid, dpSgdSchedule } from "../core/privacy/dp-sgd";
import { noiseStd } from "../core/privacy/mechanism";
import type { UploadReceipt } from "../core/protocol";
import { sha256Hex } from "../core/sha256";
import { encodeVector, WireKind } from "../core/wire";
import type { EnrollmentRow, FedwardDb, ReleaseRow, RoundRow } from "../store/db";
import {
  approveRelease,
  countsAgainstBudget,
  ledgerOf,
  recordReceipt,
  releaseCost,
  releaseFor,
  settleRelease,
  withholdRelease,
} from "../store/ledger";
import { dropCheckpoints, recordReleaseDroppingCheckpoint } from "../store/round-state";
import type { WorkerBridge } from "./bridges";
import { type CoordinatorClient, CoordinatorError } from "./coordinator";
import { resumePoint } from "./resume";
import { roundWaitText } from "./round-wait";
import { offline, pause } from "./wake";

export type FederationEvent =
  | { type: "status"; text: string }
  | { type: "backend"; choice: BackendChoice }
  | { type: "progress"; round: number; rounds: number; progress: TrainProgress }
  | { type: "round"; row: RoundRow }
  /** The site's privacy books: epsilon spent by its releases so far against the plan's budget. */
  | { type: "privacy"; spent: number; budget: number; delta: number; releases: ReleaseRow[] }
  /** The site stopped taking part (its privacy budget would run out); the text says why in plain words. */
  | { type: "stopped"; text: string }
  | { type: "done"; accuracy: number; modelVersion: number };

export interface FederationRun {
  enrollment: EnrollmentRow;
  datasetId: string;
  client: CoordinatorClient;
  trainer: WorkerBridge<TrainWorkerApi>;
  db: FedwardDb;
  backend: BackendPreference;
  onEvent: (e: FederationEvent) => void;
  signal: AbortSignal;
  pollMs?: number;
  /**
   * The site's upload review: called for each release after its ledger row is written and before its first
   * upload. true sends it; false withholds it for good (the row stays as "withheld", its bytes are dropped,
   * it counts against no budget) and the site skips the round. Absent: every release is sent.
   */
  approveUpload?: (release: ReleaseRow) => Promise<boolean>;
}

/**
 * A call into a worker that is terminated on "Leave" never settles, so every worker call races the signal:
 * leaving ends the loop at once, as an AbortError (which the page does not report as a failure).
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException("Left the federation.", "AbortError"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  untilAborted(new Promise<void>((resolve) => setTimeout(resolve, ms)), signal);

async function updateRound(db: FedwardDb, federationId: string, round: number, patch: Partial<RoundRow>) {
  const key: [string, number] = [federationId, round];
  const row: RoundRow = { ...((await db.rounds.get(key)) ?? { federationId, round }), ...patch };
  await db.rounds.put(row);
  return row;
}

/** Tells the page what the ledger holds: every release so far and the epsilon they spent together. */
async function reportPrivacy(db: FedwardDb, enrollment: EnrollmentRow, onEvent: FederationRun["onEvent"]) {
  const { delta, epsilonBudget } = enrollment.plan.privacy;
  const { releases, spent } = await ledgerOf(db, enrollment.federationId, delta);
  onEvent({ type: "privacy", spent, budget: epsilonBudget, delta, releases });
  return releases;
}

/**
 * The site's side of a federation, round after round: download the global model, evaluate it on the local
 * held-out split, check the privacy budget, train locally and release a clipped, noised delta (in the
 * worker, src/core/privacy), write the release to the ledger, then upload it. A round that already has a
 * release in the ledger (after a failed upload or a reload) sends exactly those bytes again and is never
 * trained twice. While a round trains, the worker checkpoints it to IndexedDB after every epoch; a page
 * opened again continues from there when the coordinator is still on that round and model version
 * (src/client/resume.ts). Returns when the coordinator says the federation is done, or when this site's
 * budget would run out.
 */
export async function runFederation(run: FederationRun): Promise<void> {
  const { enrollment, db, onEvent, signal } = run;
  const client = run.client.withSignal(signal);
  const { federationId, plan } = enrollment;
  const count = paramCount(plan);
  const trainer = run.trainer.api;
  // Every worker call ends on "Leave" (abort) or on the worker's death, never hangs.
  const call = <T>(work: Promise<T>) => untilAborted(run.trainer.guard(work), signal);
  // Coordinator reads are retried through network trouble; a wrong request is reported at once.
  const read = <T>(what: string, get: () => Promise<T>) => withRetry(what, get, run);

  onEvent({ type: "status", text: "Choosing the fastest training backend on this computer…" });
  const choice = await call(trainer.init(plan, run.backend));
  onEvent({ type: "backend", choice });
  await reportPrivacy(db, enrollment, onEvent);

  // What the approved plan asks for (evaluation.reportMetrics). A report that fails is not retried and does
  // not stop training: the metrics are a courtesy to the admin, the update is the federation's work.
  const reportMetrics = async (
    version: number,
    ev: { loss: number; accuracy: number; numExamples: number },
  ) => {
    try {
      await client.reportMetrics(federationId, {
        modelVersion: version,
        numExamples: ev.numExamples,
        loss: ev.loss,
        accuracy: ev.accuracy,
      });
    } catch (e) {
      if (!(e instanceof CoordinatorError)) throw e;
      onEvent({
        type: "status",
        text: `The held-out metrics of model version ${version} were not sent (${e.message}); training goes on.`,
      });
    }
  };
  const evaluate = async (version: number, weights: Float32Array) => {
    const ev = await call(trainer.evaluate(weights, run.datasetId));
    if (version > 0) {
      onEvent({
        type: "round",
        row: await updateRound(db, federationId, version, { accuracyAfter: ev.accuracy, lossAfter: ev.loss }),
      });
    }
    if (plan.evaluation.reportMetrics === true) await reportMetrics(version, ev);
    return ev;
  };
  const state = async () => {
    const s = await read("the federation's state", () => client.state(federationId));
    if (s.planHash !== enrollment.planHash) {
      throw new CoordinatorError(
        `The coordinator now runs a plan with SHA-256 ${s.planHash}, not the one approved here ` +
          `(${enrollment.planHash}). Nothing was sent; ask the federation's admin.`,
        200,
        "input",
      );
    }
    return s;
  };

  let evaluatedVersion = -1;
  for (;;) {
    signal.throwIfAborted();
    const now = await state();
    // The coordinator's receipt for this site's latest upload goes into its ledger row ("counted in model
    // version v" once that round closed).
    if (now.myUpload && (await recordReceipt(db, federationId, now.myUpload))) {
      await reportPrivacy(db, enrollment, onEvent);
    }
    if (now.status === "done") {
      await dropCheckpoints(db, federationId);
      const final = await read("the final model", () => client.model(federationId, now.modelVersion, count));
      const ev = await evaluate(now.modelVersion, final);
      onEvent({ type: "done", accuracy: ev.accuracy, modelVersion: now.modelVersion });
      return;
    }
    if (now.uploadedThisRound) {
      const mine = await releaseFor(db, federationId, now.round);
      if (mine && mine.sentAt === undefined) {
        // The acknowledgement was lost (or the page reloaded); the coordinator says it holds the update.
        const receipt = now.myUpload?.round === now.round ? now.myUpload : undefined;
        await settleRelease(db, federationId, now.round, {
          sentAt: Date.now(),
          ...(receipt ? { receipt } : {}),
        });
        await reportPrivacy(db, enrollment, onEvent);
      }
      onEvent({
        type: "status",
        text: `Round ${now.round} of ${now.rounds}: update sent. ${roundWaitText(now)}`,
      });
      // Woken early when the computer wakes or comes back online.
      await pause(run.pollMs ?? 2000, signal);
      continue;
    }
    const round = now.round;
    let release = await releaseFor(db, federationId, round);
    if (release?.withheldAt !== undefined) {
      // Declined in the upload review: never sent, also not after a reload; the round goes on without us.
      onEvent({
        type: "status",
        text: `Round ${round} of ${now.rounds}: this site chose not to send its update. ${roundWaitText(now)}`,
      });
      await sleep(run.pollMs ?? 2000, signal);
      continue;
    }
    if (release) {
      onEvent({
        type: "status",
        text: `Round ${round} of ${now.rounds}: sending again the update this site released for this round (the same bytes, no new noise)…`,
      });
    } else {
      const past = await reportPrivacy(db, enrollment, onEvent);
      // N, this site's training units (patients), sets a dp-sgd round's sampling rate and so its cost.
      const units = await trainUnits(db, run.datasetId);
      let check: BudgetCheck;
      try {
        check = checkBudget(plan, units, past.filter(countsAgainstBudget).map(releaseCost));
      } catch (e) {
        // The plan's expected batch does not fit this site's data (below 1 or above N): it cannot take part.
        if (!(e instanceof InputError)) throw e;
        const notSent = "the plan's batch does not fit this site's data";
        onEvent({ type: "round", row: await updateRound(db, federationId, round, { notSent }) });
        onEvent({ type: "stopped", text: e.message });
        return;
      }
      if (!check.allowed) {
        const text = refusalText(check, round);
        const notSent = `privacy budget (ε would reach ${formatEpsilon(check.after)} > ${formatEpsilon(check.budget)})`;
        onEvent({ type: "round", row: await updateRound(db, federationId, round, { notSent }) });
        onEvent({ type: "stopped", text });
        return;
      }
      release = await trainAndRelease(
        run,
        round,
        now.rounds,
        evaluatedVersion !== round - 1,
        check.after,
        units,
      );
      evaluatedVersion = round - 1;
      if (!release) continue;
      await reportPrivacy(db, enrollment, onEvent);
    }
    signal.throwIfAborted();
    if (run.approveUpload && release.approvedAt === undefined && release.sentAt === undefined) {
      onEvent({
        type: "status",
        text: `Round ${round} of ${now.rounds}: waiting for your review of the update…`,
      });
      if (!(await untilAborted(run.approveUpload(release), signal))) {
        await withholdRelease(db, federationId, round);
        const row = await updateRound(db, federationId, round, { notSent: "withheld by this site" });
        onEvent({ type: "round", row });
        await reportPrivacy(db, enrollment, onEvent);
        continue;
      }
      await approveRelease(db, federationId, round);
    }
    const what =
      release.mechanism === "dp-sgd" ? "update (noised at every training step)" : "clipped, noised update";
    onEvent({ type: "status", text: `Round ${round} of ${now.rounds}: sending the ${what}…` });
    if (!release.body) {
      // Accepted before, so its bytes were dropped; a fresh release would spend the budget a second time.
      throw new CoordinatorError(
        `The coordinator accepted this site's update for round ${round} on ${new Date(release.sentAt ?? 0).toISOString()} ` +
          "but no longer counts it. Nothing new is sent for this round; ask the federation's admin.",
        200,
        "input",
      );
    }
    const outcome = await uploadWithRetry(client, run, round, release.body);
    const at = Date.now();
    const { receipt } = outcome;
    await settleRelease(
      db,
      federationId,
      round,
      outcome.accepted
        ? { sentAt: at, receipt }
        : { refused: outcome.reason, ...(receipt ? { receipt } : {}) },
    );
    const patch = outcome.accepted
      ? { uploadedAt: at }
      : { notSent: `refused by the coordinator: ${outcome.reason}` };
    onEvent({ type: "round", row: await updateRound(db, federationId, round, patch) });
    await reportPrivacy(db, enrollment, onEvent);
  }

  /**
   * One round's local work: evaluate the global model (once per version), train, privatize (in the worker),
   * and write the release to the ledger before anything is sent. Returns undefined when the round closed
   * during training: then the release never leaves and is not recorded (its noise is thrown away).
   */
  async function trainAndRelease(
    run: FederationRun,
    round: number,
    rounds: number,
    evaluateFirst: boolean,
    epsilonAfter: number,
    units: number,
  ): Promise<ReleaseRow | undefined> {
    onEvent({ type: "status", text: `Round ${round} of ${rounds}: downloading the global model…` });
    const global = await read("the global model", () => client.model(federationId, round - 1, count));
    if (evaluateFirst) {
      const ev = await evaluate(round - 1, global);
      onEvent({
        type: "round",
        row: await updateRound(db, federationId, round, { accuracyBefore: ev.accuracy, lossBefore: ev.loss }),
      });
    }
    onEvent({ type: "status", text: `Round ${round} of ${rounds}: training on this computer…` });
    const resume = await resumePoint(db, {
      federationId,
      planHash: enrollment.planHash,
      datasetId: run.datasetId,
      round,
      rounds,
      modelVersion: round - 1,
      ...(isDpSgd(plan)
        ? { epochs: dpSgdPrivacy(plan).stepsPerRound, mechanism: "dp-sgd" as const }
        : { epochs: siteUpdateTraining(plan).epochs }),
      optimizer: plan.training.optimizer,
      count,
    });
    if (resume.text) onEvent({ type: "status", text: resume.text });
    const resumedFromEpoch = resume.checkpoint.resume?.epoch;
    if (resumedFromEpoch !== undefined) {
      onEvent({ type: "round", row: await updateRound(db, federationId, round, { resumedFromEpoch }) });
    }
    const onProgress = proxy((progress: TrainProgress) =>
      onEvent({ type: "progress", round, rounds, progress }),
    );
    const out = await call(trainer.fit(global, run.datasetId, onProgress, resume.checkpoint));
    const { released } = out;
    // What the ledger and the budget rely on must be what the plan asked of this site: checked, not trusted.
    const recorded = releaseTerms(plan, units, count, released);
    // Site sizes are not disclosed: the coordinator averages unweighted and gets numExamples = 0.
    const body = encodeVector({ kind: WireKind.update, round, numExamples: 0, values: released.delta });
    const sha256 = await sha256Hex(body);
    onEvent({
      type: "round",
      row: await updateRound(db, federationId, round, {
        backend: choice.backend,
        uploadedBytes: body.length,
        preClipNorm: released.preClipNorm,
        postClipNorm: released.postClipNorm,
        sigma: released.sigma,
        uploadSha256: sha256,
        trainLoss: out.metrics.loss,
        examplesPerSecond: out.metrics.examplesPerSecond,
      }),
    });
    // A round that closed while this site trained would discard the update: then nothing is sent.
    if ((await state()).round !== round) {
      await dropCheckpoints(db, federationId);
      onEvent({
        type: "round",
        row: await updateRound(db, federationId, round, { notSent: "round closed" }),
      });
      return undefined;
    }
    signal.throwIfAborted();
    const release: ReleaseRow = {
      federationId,
      round,
      planHash: enrollment.planHash,
      noiseMultiplier: plan.privacy.noiseMultiplier,
      clipNorm: released.clipNorm,
      sigma: released.sigma,
      grid: released.grid,
      ...recorded,
      delta: plan.privacy.delta,
      epsilonAfter,
      preClipNorm: released.preClipNorm,
      postClipNorm: released.postClipNorm,
      body,
      bytes: body.length,
      sha256,
      createdAt: Date.now(),
    };
    // The release replaces the round's checkpoint in one transaction: after a reload the round is sent again
    // as recorded, never trained again.
    await recordReleaseDroppingCheckpoint(db, release);
    return release;
  }
}

/** N for the budget check: the site's training units as the import counted them (imports before units: rows). */
async function trainUnits(db: FedwardDb, datasetId: string): Promise<number> {
  const dataset = await db.datasets.get(datasetId);
  return dataset?.trainUnits ?? dataset?.numTrain ?? 0;
}

/**
 * The ledger fields of a dp-sgd release, after checking that the worker trained under the plan's terms at
 * this site: its steps, sampling rate, units, z, C, sigma = z C and grid. A worker that noised less than the
 * plan promises (or released by the other mechanism) is our bug, and nothing of it may be recorded or sent.
 */
function releaseTerms(
  plan: Plan,
  units: number,
  count: number,
  released: FitRelease["released"],
): Pick<ReleaseRow, "mechanism" | "steps" | "samplingRate" | "units"> {
  const dpSgd = isDpSgd(plan);
  const { clipNorm, noiseMultiplier } = plan.privacy;
  if (!("mechanism" in released)) {
    if (!dpSgd && released.clipNorm === clipNorm && released.sigma === noiseStd(plan.privacy)) return {};
    throw mismatch("a site-update release", plan);
  }
  if (!dpSgd) throw mismatch("a dp-sgd release", plan);
  const schedule = dpSgdSchedule(plan, units);
  const { grid, sigma } = dpSgdGrid({ clipNorm, noiseMultiplier }, count);
  const expected = {
    steps: schedule.steps,
    samplingRate: schedule.samplingRate,
    units,
    noiseMultiplier,
    clipNorm,
    sigma,
    grid,
  };
  const wrong = Object.entries(expected).filter(([k, v]) => released[k as keyof typeof expected] !== v);
  if (wrong.length > 0) {
    const got = wrong
      .map(([k, v]) => `${k} ${released[k as keyof typeof expected]} instead of ${v}`)
      .join(", ");
    throw mismatch(`a release with ${got}`, plan);
  }
  return { mechanism: "dp-sgd", steps: schedule.steps, samplingRate: schedule.samplingRate, units };
}

function mismatch(what: string, plan: Plan): Error {
  return new Error(
    `The training worker made ${what}, not what the plan (${plan.privacy.mechanism ?? "site-update"}) asks; ` +
      "nothing was recorded or sent. This is a bug in fedward.",
  );
}

/** Retries a coordinator read through "try again" errors with backoff, telling the clinician. */
async function withRetry<T>(what: string, get: () => Promise<T>, run: FederationRun): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await get();
    } catch (e) {
      if (!(e instanceof CoordinatorError) || e.kind !== "retry" || attempt >= 8) throw e;
      const wait = Math.min(30_000, 1000 * 2 ** attempt);
      // Waiting for the network (a sleeping laptop, Wi-Fi off) is not a failed attempt.
      if (offline()) attempt--;
      run.onEvent({
        type: "status",
        text: offline()
          ? `Could not fetch ${what}: this computer is offline. Trying again when it is back online.`
          : `Could not fetch ${what}: ${e.message} Trying again in ${wait / 1000} s.`,
      });
      await pause(wait, run.signal);
    }
  }
}

type UploadOutcome =
  | { accepted: true; receipt: UploadReceipt }
  | { accepted: false; reason: string; receipt: UploadReceipt | undefined };

/**
 * Retries re-send the very same bytes (the same release). A conflict (409) is never taken for accepted by
 * itself: the coordinator already holds this update (its reply was lost), or the round moved on without it,
 * and only the coordinator's receipt for the round, from the state route, tells which.
 */
async function uploadWithRetry(
  client: CoordinatorClient,
  run: FederationRun,
  round: number,
  body: Uint8Array,
): Promise<UploadOutcome> {
  const { enrollment, signal } = run;
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      const reply = await client.upload(enrollment.federationId, round, body);
      return { accepted: true, receipt: reply.receipt };
    } catch (e) {
      if (!(e instanceof CoordinatorError)) throw e;
      if (e.status === 409) {
        const { myUpload } = await withRetry(
          "the coordinator's receipt for this upload",
          () => client.state(enrollment.federationId, round),
          run,
        );
        const receipt = myUpload?.round === round ? myUpload : undefined;
        if (receipt && receipt.status !== "refused") return { accepted: true, receipt };
        return { accepted: false, reason: receipt?.reason ?? e.message, receipt };
      }
      if (e.kind !== "retry" || attempt >= 5) throw e;
      // Waiting for the network is not a failed attempt; coming back online ends the wait.
      if (offline()) attempt--;
      await pause(offline() ? 30_000 : 500 * 2 ** attempt, signal);
    }
  }
}
