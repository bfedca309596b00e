import { proxy } from "comlink";
import type { BackendChoice, BackendPreference } from "../../workers/train/backends";
import type { TrainProgress } from "../../workers/train/trainer";
import type { TrainWorkerApi } from "../../workers/train.worker";
import { paramCount } from "../core/plan";
import { privatizeDelta } from "../core/privacy/mechanism";
import { sha256Hex } from "../core/sha256";
import { subtract } from "../core/vector";
import { encodeVector, WireKind } from "../core/wire";
import type { EnrollmentRow, FedwardDb, RoundRow } from "../store/db";
import type { WorkerBridge } from "./bridges";
import { type CoordinatorClient, CoordinatorError } from "./coordinator";

export type FederationEvent =
  | { type: "status"; text: string }
  | { type: "backend"; choice: BackendChoice }
  | { type: "progress"; round: number; rounds: number; progress: TrainProgress }
  | { type: "round"; row: RoundRow }
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

/**
 * The site's side of a federation, round after round: download the global model, evaluate it on the local
 * held-out split, train locally, clip and noise the delta (src/core/privacy), record what leaves, upload it.
 * Returns when the coordinator says the federation is done.
 */
export async function runFederation(run: FederationRun): Promise<void> {
  const { enrollment, client, db, onEvent, signal } = run;
  const { federationId, plan } = enrollment;
  const count = paramCount(plan);
  const trainer = run.trainer.api;
  onEvent({ type: "status", text: "Choosing the fastest training backend on this computer…" });
  const choice = await untilAborted(trainer.init(plan, run.backend), signal);
  onEvent({ type: "backend", choice });

  const evaluate = async (version: number, weights: Float32Array) => {
    const ev = await untilAborted(trainer.evaluate(weights, run.datasetId), signal);
    if (version > 0) {
      onEvent({
        type: "round",
        row: await updateRound(db, federationId, version, { accuracyAfter: ev.accuracy, lossAfter: ev.loss }),
      });
    }
    return ev;
  };

  let evaluatedVersion = -1;
  for (;;) {
    signal.throwIfAborted();
    const state = await client.state(federationId);
    if (state.status === "done") {
      const final = await client.model(federationId, state.modelVersion, count);
      const ev = await evaluate(state.modelVersion, final);
      onEvent({ type: "done", accuracy: ev.accuracy, modelVersion: state.modelVersion });
      return;
    }
    if (state.uploadedThisRound) {
      onEvent({
        type: "status",
        text: `Round ${state.round} of ${state.rounds}: update sent; waiting for other sites (${state.updatesThisRound} of ${state.minSites} in).`,
      });
      await sleep(run.pollMs ?? 1000, signal);
      continue;
    }
    const round = state.round;
    onEvent({ type: "status", text: `Round ${round} of ${state.rounds}: downloading the global model…` });
    const global = await client.model(federationId, round - 1, count);
    if (evaluatedVersion !== round - 1) {
      const ev = await evaluate(round - 1, global);
      onEvent({
        type: "round",
        row: await updateRound(db, federationId, round, { accuracyBefore: ev.accuracy, lossBefore: ev.loss }),
      });
      evaluatedVersion = round - 1;
    }
    onEvent({ type: "status", text: `Round ${round} of ${state.rounds}: training on this computer…` });
    const onProgress = proxy((progress: TrainProgress) =>
      onEvent({ type: "progress", round, rounds: state.rounds, progress }),
    );
    const out = await untilAborted(trainer.fit(global, run.datasetId, onProgress), signal);
    const released = privatizeDelta(subtract(out.weights, global), plan.privacy);
    // Site sizes are not disclosed: the coordinator averages unweighted and gets numExamples = 0.
    const body = encodeVector({ kind: WireKind.update, round, numExamples: 0, values: released.delta });
    const row = await updateRound(db, federationId, round, {
      backend: choice.backend,
      uploadedBytes: body.length,
      preClipNorm: released.preClipNorm,
      postClipNorm: released.postClipNorm,
      sigma: released.sigma,
      uploadSha256: await sha256Hex(body),
      trainLoss: out.metrics.loss,
      examplesPerSecond: out.metrics.examplesPerSecond,
    });
    onEvent({ type: "round", row });
    onEvent({
      type: "status",
      text: `Round ${round} of ${state.rounds}: sending the clipped, noised update…`,
    });
    await uploadWithRetry(run, round, body);
    onEvent({ type: "round", row: await updateRound(db, federationId, round, { uploadedAt: Date.now() }) });
  }
}

/** Retries re-send the very same bytes (the same release); a conflict means the coordinator already has it. */
async function uploadWithRetry(run: FederationRun, round: number, body: Uint8Array): Promise<void> {
  const { client, enrollment, signal } = run;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.upload(enrollment.federationId, round, body);
      return;
    } catch (e) {
      if (!(e instanceof CoordinatorError)) throw e;
      if (e.status === 409) {
        const state = await client.state(enrollment.federationId);
        if (state.round !== round || state.uploadedThisRound) return; // round moved on, or ours is in
      }
      if (e.kind !== "retry" || attempt >= 5) throw e;
      await sleep(500 * 2 ** attempt, signal);
    }
  }
}
