/**
 * The coordinator's side of Flower's Strategy (flwr.server.strategy.Strategy), on plain Float32Array vectors:
 * configureFit says what the sites train with, aggregateFit turns the round's updates into the next model,
 * aggregateEvaluate summarises the sites' evaluations. Failures are data, never exceptions.
 */

/** One site's contribution to a round, as the coordinator stores it: a weight delta (trained − global). */
export interface FitResult {
  siteId: string;
  delta: Float32Array;
  numExamples: number;
}

/** A site that was expected but did not deliver (refused, late, withheld, revoked): data, not an exception. */
export interface FitFailure {
  siteId: string;
  reason: string;
}

export interface AggregateResult {
  parameters: Float32Array;
  metrics: Record<string, number>;
  /** The server optimizer's state after this round (FedAvgM, FedAdam, FedYogi, FedAdagrad); persist it. */
  state?: StrategyState;
}

/** The coordinator's strategy as the round logic calls it today (Flower's Strategy.aggregate_fit, reduced). */
export interface Strategy {
  readonly name: string;
  aggregateFit(
    serverRound: number,
    global: Float32Array,
    results: FitResult[],
    failures: FitFailure[],
  ): AggregateResult;
}

/** Every strategy a plan can name in aggregation.strategy. */
export const STRATEGY_NAMES = [
  "fedavg",
  "fedavg-weighted",
  "fedavgm",
  "fedadam",
  "fedyogi",
  "fedadagrad",
  "median",
  "trimmed-mean",
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/**
 * A server optimizer's memory between rounds, as plain data so the coordinator can store it next to the
 * model version it belongs to (encodeStrategyState / decodeStrategyState) and hand it back next round.
 */
export interface StrategyState {
  /** The strategy that wrote it: another strategy refuses it. */
  strategy: StrategyName;
  /** Rounds aggregated into this state: the state returned by round r's aggregation has rounds = r. */
  rounds: number;
  /** Named vectors as long as the model: "momentum" (FedAvgM), "m" and "v" (FedAdam, FedYogi, FedAdagrad). */
  vectors: Record<string, Float32Array>;
}

/** What every site trains round `serverRound` with (Flower's FitIns: parameters and a config). */
export interface FitConfig {
  serverRound: number;
  parameters: Float32Array;
  /** FedProx's proximalMu when the plan sets it (the site adds μ(w − w_global) to each gradient). */
  config: Record<string, number>;
}

/** One site's evaluation of a global model on its held-out split (Flower's EvaluateRes). */
export interface EvaluateResult {
  siteId: string;
  numExamples: number;
  loss: number;
  metrics: Record<string, number>;
}

export interface EvaluateAggregate {
  /** Example-weighted mean loss; undefined when no site reported or every site reported 0 examples. */
  loss: number | undefined;
  metrics: Record<string, number>;
}

/**
 * The sum of the round's accepted deltas so far, in float64 (O(d) memory): what an incremental coordinator
 * keeps instead of every update. Each delta enters with its weight (1, or numExamples when weighted).
 */
export interface RunningSum {
  sum: Float64Array;
  /** Total weight added: the number of sites when unweighted, their examples when weighted. */
  weight: number;
  sites: number;
  numExamples: number;
}

/** A strategy in Flower's full shape; `Strategy` is the part the round logic calls today. */
export interface FederatedStrategy extends Strategy {
  readonly name: StrategyName;
  /** Each update enters the mean with weight numExamples (sites must then send real counts). */
  readonly weighted: boolean;
  /**
   * Median and trimmed mean sort every coordinate across sites: they need every update of the round, so an
   * incremental coordinator cannot use a running sum, and secure aggregation (which reveals only the sum)
   * cannot be used with them. aggregateSum refuses for these.
   */
  readonly needsEveryUpdate: boolean;
  /** The strategy keeps state between rounds: the coordinator must persist the returned state. */
  readonly stateful: boolean;
  /** The hyper-parameters in force, defaults filled in (serverLearningRate, beta1, trimFraction, proximalMu…). */
  readonly settings: Readonly<Record<string, number>>;
  configureFit(serverRound: number, parameters: Float32Array): FitConfig;
  aggregateFit(
    serverRound: number,
    global: Float32Array,
    results: FitResult[],
    failures: FitFailure[],
    state?: StrategyState,
  ): AggregateResult;
  /** aggregateFit from a running sum (mean-based strategies only): the same result, without every update. */
  aggregateSum(
    serverRound: number,
    global: Float32Array,
    sum: RunningSum,
    failures: FitFailure[],
    state?: StrategyState,
  ): AggregateResult;
  aggregateEvaluate(
    serverRound: number,
    results: EvaluateResult[],
    failures: FitFailure[],
  ): EvaluateAggregate;
}
