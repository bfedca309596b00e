/**
 * The coordinator's aggregation strategies (Flower's shape): the types and classes live in strategies/,
 * this module is the entry point the coordinator, the simulation and the tests import.
 */
export {
  addToSum,
  emptySum,
  sumOf,
  trimCount,
} from "./strategies/combine";
export { aggregateEvaluations } from "./strategies/evaluate";
export { describeAggregation, proximalMuOf, strategyFor } from "./strategies/factory";
export { addProximalTerm, proximalPenalty } from "./strategies/fedprox";
export type { AdaptiveOptions, MomentumOptions } from "./strategies/server-opt";
export {
  decodeStrategyState,
  encodeStrategyState,
  STATE_VECTORS,
  StrategyStateError,
} from "./strategies/state";
export {
  ADAPTIVE_DEFAULTS,
  DEFAULT_TRIM_FRACTION,
  FEDADAGRAD_DEFAULTS,
  FEDAVGM_DEFAULTS,
  FedAdagrad,
  FedAdam,
  FedAvgM,
  FedAvgUnweighted,
  FedAvgWeighted,
  FedMedian,
  FedTrimmedMean,
  FedYogi,
  type StrategyOptions,
} from "./strategies/strategies";
export {
  type AggregateResult,
  type EvaluateAggregate,
  type EvaluateResult,
  type FederatedStrategy,
  type FitConfig,
  type FitFailure,
  type FitResult,
  type RunningSum,
  STRATEGY_NAMES,
  type Strategy,
  type StrategyName,
  type StrategyState,
} from "./strategies/types";
