import { proxy } from "comlink";
import type { BackendPreference } from "../../../workers/train/backends";
import type { DpSgdRelease, TrainWorkerApi } from "../../../workers/train.worker";
import { trainBridge, type WorkerBridge } from "../../client/bridges";
import { initialWeights } from "../../core/model-format";
import type { Plan } from "../../core/plan";
import { checkBudget, planPrivacy, type ReleaseCost, refusalText } from "../../core/privacy/budget";
import type { PrivatizedDelta } from "../../core/privacy/mechanism";
import { FedAvgUnweighted } from "../../core/strategy";
import type { SimulationData } from "./sim-data";
import { budgetText } from "./sim-text";

/** Held-out accuracy of each curve after a round (round 0: the shared initial model), and ε spent. */
export interface SimRound {
  round: number;
  federated: number;
  pooled: number;
  /** One per site, each trained on its own data only. */
  alone: number[];
  /** The largest of the sites' ε after this round (each site's own, below), at the plan's δ. */
  epsilon: number;
  /** Each site's ε after this round, from its own releases and its own N (per unit of its data). */
  epsilonBySite: number[];
  /** The pooled model's ε, per unit of the pooled data (it trains with the same mechanism on all of it). */
  epsilonPooled: number;
}

export type SimEvent =
  | { type: "status"; text: string }
  | { type: "backend"; backend: string }
  | { type: "round"; row: SimRound }
  /** Before round 1: the rounds asked for do not fit the plan's budget at some site. */
  | { type: "budget"; text: string; roundsWithinBudget: number }
  | { type: "stopped"; text: string };

export interface SimRunOptions {
  plan: Plan;
  data: SimulationData;
  rounds: number;
  backend: BackendPreference;
  signal: AbortSignal;
  onEvent: (e: SimEvent) => void;
}

/** A worker call that ends at once when the run is stopped (a terminated worker never answers). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException("The simulation was stopped.", "AbortError"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function plus(a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (x, i) => x + (b[i] as number));
}

/**
 * The federation, in this tab. Each simulated site has its own training worker (the real
 * workers/train.worker.ts through trainBridge) and trains exactly as a real site does: fit() starts from the
 * given weights and trains the plan's round on the site's IndexedDB shards, by DP-SGD (every step's
 * gradients clipped per row and noised inside the worker) or, for an old plan, the whole delta clipped and
 * noised by src/core/privacy/mechanism.ts. The page plays the coordinator with the coordinator's strategy
 * (FedAvgUnweighted from src/core/strategy.ts) and checks each site's next round against the plan's
 * budget as that site does (src/core/privacy/budget.ts), with the site's own N and its own releases.
 *
 * The baselines use the same worker call, so they are trained with the same mechanism: "alone" is each
 * site's worker training its own model on its own data (at the same ε as that site's federated releases:
 * a hospital would do one or the other, so it is not counted twice), and "pooled" a further worker
 * training one model on all the sites' training rows, whose ε is per row of the pooled data (held by one
 * party, which real hospitals may not do). Every model is evaluated on the same pooled held-out set.
 */
export async function runSimulation(o: SimRunOptions): Promise<SimRound[]> {
  const { plan, data, signal, onEvent } = o;
  const sites = data.sites.map(() => trainBridge());
  const central = trainBridge();
  const all = [...sites, central];
  const call = <T>(bridge: WorkerBridge<TrainWorkerApi>, work: Promise<T>) =>
    untilAborted(bridge.guard(work), signal);
  const fit = async (bridge: WorkerBridge<TrainWorkerApi>, weights: Float32Array, datasetId: string) => {
    const out = await call(
      bridge,
      bridge.api.fit(
        weights,
        datasetId,
        proxy(() => {}),
      ),
    );
    return { delta: out.released.delta, cost: releaseCost(plan, out.released) };
  };
  const accuracy = async (bridge: WorkerBridge<TrainWorkerApi>, weights: Float32Array) =>
    (await call(bridge, bridge.api.evaluate(weights, data.holdoutDatasetId))).accuracy;
  const history: SimRound[] = [];
  try {
    onEvent({ type: "status", text: `Starting ${all.length} training workers…` });
    const choices = await Promise.all(all.map((b) => call(b, b.api.init(plan, o.backend))));
    onEvent({ type: "backend", backend: choices[0]?.backend ?? "unknown" });

    // One initial model for every curve, drawn as the coordinator draws it.
    let global = initialWeights(plan);
    let alone = sites.map(() => global);
    let pooled = global;
    const start = await accuracy(central, global);
    const first: SimRound = {
      round: 0,
      federated: start,
      pooled: start,
      alone: sites.map(() => start),
      epsilon: 0,
      epsilonBySite: sites.map(() => 0),
      epsilonPooled: 0,
    };
    history.push(first);
    onEvent({ type: "round", row: first });

    const strategy = new FedAvgUnweighted();
    // Each site's own books (a real site keeps its own ledger), and the pooled model's.
    const units = data.sites.map((s) => s.examples);
    const pooledUnits = units.reduce((a, b) => a + b, 0);
    const releases: ReleaseCost[][] = sites.map(() => []);
    const pooledReleases: ReleaseCost[] = [];
    const within = Math.min(
      ...units.map((n) => planPrivacy({ ...plan, rounds: o.rounds }, n).roundsWithinBudget),
    );
    if (within < o.rounds)
      onEvent({ type: "budget", text: budgetText(plan, o.rounds, within), roundsWithinBudget: within });
    for (let round = 1; round <= o.rounds; round++) {
      signal.throwIfAborted();
      const checks = units.map((n, k) => checkBudget(plan, n, releases[k] as ReleaseCost[]));
      const refused = checks.findIndex((c) => !c.allowed);
      if (refused >= 0) {
        const check = checks[refused] as (typeof checks)[number];
        onEvent({
          type: "stopped",
          text: `Hospital ${refused + 1}: ${refusalText(check, round)} The simulation stops after round ${round - 1}.`,
        });
        break;
      }
      const pooledCheck = checkBudget(plan, pooledUnits, pooledReleases);
      onEvent({ type: "status", text: `Round ${round} of ${o.rounds}: ${sites.length} hospitals train…` });
      // Each site's worker trains the federated model, then its own; the central worker the pooled one.
      const [siteOut, pooledDelta] = await Promise.all([
        Promise.all(
          sites.map(async (bridge, k) => {
            const datasetId = data.sites[k]?.datasetId as string;
            const federated = await fit(bridge, global, datasetId);
            const own = await fit(bridge, alone[k] as Float32Array, datasetId);
            return { federated, own };
          }),
        ),
        fit(central, pooled, data.pooledDatasetId),
      ]);
      for (const [k, s] of siteOut.entries()) releases[k]?.push(s.federated.cost);
      pooledReleases.push(pooledDelta.cost);
      // Site sizes are not disclosed to a real coordinator either: numExamples = 0, unweighted mean.
      const results = siteOut.map((s, k) => ({
        siteId: `site-${k + 1}`,
        delta: s.federated.delta,
        numExamples: 0,
      }));
      global = strategy.aggregateFit(round, global, results, []).parameters;
      alone = alone.map((w, k) => plus(w, siteOut[k]?.own.delta as Float32Array));
      pooled = plus(pooled, pooledDelta.delta);

      onEvent({ type: "status", text: `Round ${round} of ${o.rounds}: evaluating on the held-out set…` });
      const [aloneAccuracy, [federated, pooledAccuracy]] = await Promise.all([
        Promise.all(sites.map((bridge, k) => accuracy(bridge, alone[k] as Float32Array))),
        (async () => [await accuracy(central, global), await accuracy(central, pooled)])(),
      ]);
      const row: SimRound = {
        round,
        federated: federated as number,
        pooled: pooledAccuracy as number,
        alone: aloneAccuracy,
        epsilon: Math.max(...checks.map((c) => c.after)),
        epsilonBySite: checks.map((c) => c.after),
        epsilonPooled: pooledCheck.after,
      };
      history.push(row);
      onEvent({ type: "round", row });
    }
    return history;
  } finally {
    // The workers hold models and maybe a GPU device: free them however the run ends.
    for (const b of all) b.terminate();
  }
}

/** What the worker's release cost, for the books: DP-SGD's steps at the site's q, or one site-update release. */
function releaseCost(plan: Plan, released: PrivatizedDelta | DpSgdRelease): ReleaseCost {
  if ("mechanism" in released && released.mechanism === "dp-sgd")
    return {
      mechanism: "dp-sgd",
      noiseMultiplier: released.noiseMultiplier,
      samplingRate: released.samplingRate,
      steps: released.steps,
    };
  return { mechanism: "site-update", noiseMultiplier: plan.privacy.noiseMultiplier };
}
