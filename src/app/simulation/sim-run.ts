import { proxy } from "comlink";
import type { BackendPreference } from "../../../workers/train/backends";
import type { TrainWorkerApi } from "../../../workers/train.worker";
import { trainBridge, type WorkerBridge } from "../../client/bridges";
import { initialWeights } from "../../core/model-format";
import type { Plan } from "../../core/plan";
import { checkBudget, refusalText } from "../../core/privacy/budget";
import { FedAvgUnweighted } from "../../core/strategy";
import type { SimulationData } from "./sim-data";

/** Held-out accuracy of each curve after a round (round 0: the shared initial model), and ε spent. */
export interface SimRound {
  round: number;
  federated: number;
  pooled: number;
  /** One per site, each trained on its own data only. */
  alone: number[];
  /** ε of each site's releases to the (simulated) coordinator after this round, at the plan's δ. */
  epsilon: number;
}

export type SimEvent =
  | { type: "status"; text: string }
  | { type: "backend"; backend: string }
  | { type: "round"; row: SimRound }
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
 * given weights, trains the plan's epochs on the site's IndexedDB shards, and returns the delta clipped and
 * noised by src/core/privacy/mechanism.ts inside the worker. The page plays the coordinator with the
 * coordinator's strategy (FedAvgUnweighted from src/core/strategy.ts) and checks each round against the
 * plan's privacy budget as a site does (src/core/privacy/budget.ts).
 *
 * The baselines use the same worker call, so their updates are clipped and noised too: "alone" is each
 * site's worker training its own model on its own data, and "pooled" a further worker training one model
 * on all the sites' training rows. Every model is evaluated on the same pooled held-out set.
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
    return out.released.delta;
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
    };
    history.push(first);
    onEvent({ type: "round", row: first });

    const strategy = new FedAvgUnweighted();
    const releases: number[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      signal.throwIfAborted();
      const check = checkBudget(plan.privacy, releases);
      if (!check.allowed) {
        onEvent({ type: "stopped", text: refusalText(check, round) });
        break;
      }
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
      releases.push(plan.privacy.noiseMultiplier);
      // Site sizes are not disclosed to a real coordinator either: numExamples = 0, unweighted mean.
      const results = siteOut.map((s, k) => ({
        siteId: `site-${k + 1}`,
        delta: s.federated,
        numExamples: 0,
      }));
      global = strategy.aggregateFit(round, global, results, []).parameters;
      alone = alone.map((w, k) => plus(w, siteOut[k]?.own as Float32Array));
      pooled = plus(pooled, pooledDelta);

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
        epsilon: check.after,
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
