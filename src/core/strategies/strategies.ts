import { coordinateWise, meanOfSum, sumOf, trimCount } from "./combine";
import { aggregateEvaluations } from "./evaluate";
import {
  type AdaptiveOptions,
  adaptiveStep,
  type MomentumOptions,
  momentumStep,
  plainStep,
  type ServerOptimizer,
} from "./server-opt";
import type {
  AggregateResult,
  EvaluateAggregate,
  EvaluateResult,
  FederatedStrategy,
  FitConfig,
  FitFailure,
  FitResult,
  RunningSum,
  StrategyName,
  StrategyState,
} from "./types";

/** Hsu et al. 2019 sweep β; 0.9 is their and torch's usual momentum. η = 1 is Flower's FedAvgM default. */
export const FEDAVGM_DEFAULTS: MomentumOptions = { serverLearningRate: 1, momentum: 0.9 };

/**
 * Reddi et al. 2021 (§5) fix β1 = 0.9 and β2 = 0.99 and tune η and τ; η = 10⁻² and τ = 10⁻³ are Flower's
 * FedYogi defaults and lie inside the paper's good region, used for all three so that switching the
 * optimizer changes one thing. FedAdagrad has no first moment (β1 = 0) in Flower, as in Adagrad itself.
 */
export const ADAPTIVE_DEFAULTS: AdaptiveOptions = {
  serverLearningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.99,
  tau: 1e-3,
};
export const FEDADAGRAD_DEFAULTS: AdaptiveOptions = { ...ADAPTIVE_DEFAULTS, beta1: 0 };

/** Flower's FedTrimmedAvg default β. */
export const DEFAULT_TRIM_FRACTION = 0.2;

export interface StrategyOptions {
  /** FedProx's μ, sent to every site in configureFit's config; absent or 0: no proximal term. */
  proximalMu?: number | undefined;
}

type Combine =
  | { kind: "mean"; weighted: boolean }
  | { kind: "median" }
  | { kind: "trimmed-mean"; trimFraction: number };

/** A strategy = how the updates combine into Δ_t + how the server steps along it. */
class ComposedStrategy implements FederatedStrategy {
  readonly weighted: boolean;
  readonly needsEveryUpdate: boolean;
  readonly stateful: boolean;
  readonly settings: Readonly<Record<string, number>>;

  constructor(
    readonly name: StrategyName,
    private readonly combine: Combine,
    private readonly optimizer: ServerOptimizer,
    settings: Record<string, number>,
    options: StrategyOptions,
  ) {
    this.weighted = combine.kind === "mean" && combine.weighted;
    this.needsEveryUpdate = combine.kind !== "mean";
    this.stateful = optimizer.stateful;
    const mu = options.proximalMu;
    if (mu !== undefined && !(Number.isFinite(mu) && mu >= 0))
      throw new RangeError(`${name}: proximalMu must be 0 or more, got ${mu}.`);
    this.settings = Object.freeze(mu ? { ...settings, proximalMu: mu } : { ...settings });
  }

  configureFit(serverRound: number, parameters: Float32Array): FitConfig {
    const mu = this.settings.proximalMu;
    return { serverRound, parameters, config: mu ? { proximalMu: mu } : {} };
  }

  aggregateFit(
    serverRound: number,
    global: Float32Array,
    results: FitResult[],
    failures: FitFailure[],
    state?: StrategyState,
  ): AggregateResult {
    const combine = this.combine;
    if (combine.kind === "mean")
      return this.aggregateSum(
        serverRound,
        global,
        sumOf(results, global.length, combine.weighted, serverRound),
        failures,
        state,
      );
    const trim = combine.kind === "median" ? 0 : trimCount(results.length, combine.trimFraction);
    const delta = coordinateWise(
      combine.kind === "median" ? { median: true } : { trim },
      results,
      global.length,
      serverRound,
      failures,
    );
    const metrics = {
      sites: results.length,
      failures: failures.length,
      numExamples: results.reduce((n, r) => n + r.numExamples, 0),
      ...(combine.kind === "trimmed-mean" ? { trimmedPerSide: trim } : {}),
    };
    return this.finish(serverRound, global, delta, metrics, state);
  }

  aggregateSum(
    serverRound: number,
    global: Float32Array,
    sum: RunningSum,
    failures: FitFailure[],
    state?: StrategyState,
  ): AggregateResult {
    if (this.needsEveryUpdate)
      throw new Error(
        `${this.name} sorts every weight across the sites' updates and cannot aggregate a running sum: ` +
          "pass every update to aggregateFit; this is a bug in fedward.",
      );
    const delta = meanOfSum(sum, global.length, serverRound, failures);
    const metrics = { sites: sum.sites, failures: failures.length, numExamples: sum.numExamples };
    return this.finish(serverRound, global, delta, metrics, state);
  }

  aggregateEvaluate(
    serverRound: number,
    results: EvaluateResult[],
    failures: FitFailure[],
  ): EvaluateAggregate {
    return aggregateEvaluations(serverRound, results, failures);
  }

  private finish(
    serverRound: number,
    global: Float32Array,
    delta: Float64Array,
    metrics: Record<string, number>,
    state: StrategyState | undefined,
  ): AggregateResult {
    // A stateless step (plainStep) ignores a state it is given: it has nothing to carry.
    const step = this.optimizer.step(serverRound, global, delta, state);
    return step.state
      ? { parameters: step.parameters, metrics, state: step.state }
      : { parameters: step.parameters, metrics };
  }
}

/**
 * FedAvg over weight deltas with an unweighted mean: next = global + (1/K) * sum_k delta_k. The default.
 * Unweighted on purpose: each site's delta is clipped to C and noised at the site, so with equal weights
 * one site moves the mean by at most C/K whatever it claims; weighting by numExamples would let a site
 * inflate its influence by misreporting its count, would void that bound, and would publish each site's
 * dataset size to the coordinator (and to the others through the model).
 */
export class FedAvgUnweighted extends ComposedStrategy {
  constructor(options: StrategyOptions = {}) {
    super("fedavg", { kind: "mean", weighted: false }, plainStep, {}, options);
  }
}

/**
 * FedAvg as McMahan et al. 2017: next = global + Σ n_k Δ_k / Σ n_k. A plan option, disclosed in the plan
 * view: sites must send their example counts, which the coordinator then learns, and a site that
 * overstates its count pulls the model towards itself.
 */
export class FedAvgWeighted extends ComposedStrategy {
  constructor(options: StrategyOptions = {}) {
    super("fedavg-weighted", { kind: "mean", weighted: true }, plainStep, {}, options);
  }
}

/** FedAvgM (Hsu et al. 2019): server momentum over the unweighted mean delta. */
export class FedAvgM extends ComposedStrategy {
  constructor(options: Partial<MomentumOptions> & StrategyOptions = {}) {
    const o = { ...FEDAVGM_DEFAULTS, ...defined(options, ["serverLearningRate", "momentum"]) };
    super("fedavgm", { kind: "mean", weighted: false }, momentumStep(o), { ...o }, options);
  }
}

type AdaptiveName = "fedadam" | "fedyogi" | "fedadagrad";
const adaptiveKeys = ["serverLearningRate", "beta1", "beta2", "tau"] as const;

function adaptive(name: AdaptiveName, defaults: AdaptiveOptions, options: Partial<AdaptiveOptions>) {
  const o = { ...defaults, ...defined(options, adaptiveKeys) };
  const settings: Record<string, number> = { ...o };
  if (name === "fedadagrad") delete settings.beta2; // Adagrad's v has no decay
  return [adaptiveStep(name, o), settings] as const;
}

/** FedAdam (Reddi et al. 2021, Alg. 2) over the unweighted mean delta (the paper's Δ_t = (1/|S|) Σ Δ_i). */
export class FedAdam extends ComposedStrategy {
  constructor(options: Partial<AdaptiveOptions> & StrategyOptions = {}) {
    const [step, settings] = adaptive("fedadam", ADAPTIVE_DEFAULTS, options);
    super("fedadam", { kind: "mean", weighted: false }, step, settings, options);
  }
}

/** FedYogi (Reddi et al. 2021, Alg. 2): Adam with Yogi's additive, sign-controlled second moment. */
export class FedYogi extends ComposedStrategy {
  constructor(options: Partial<AdaptiveOptions> & StrategyOptions = {}) {
    const [step, settings] = adaptive("fedyogi", ADAPTIVE_DEFAULTS, options);
    super("fedyogi", { kind: "mean", weighted: false }, step, settings, options);
  }
}

/** FedAdagrad (Reddi et al. 2021, Alg. 2): the second moment sums every round's Δ_t². */
export class FedAdagrad extends ComposedStrategy {
  constructor(options: Partial<Omit<AdaptiveOptions, "beta2">> & StrategyOptions = {}) {
    const [step, settings] = adaptive("fedadagrad", FEDADAGRAD_DEFAULTS, options);
    super("fedadagrad", { kind: "mean", weighted: false }, step, settings, options);
  }
}

/**
 * Coordinate-wise median of the deltas (Yin et al. 2018, Alg. 1 option I): one site, or a minority, cannot
 * drag a weight past the honest sites' values. Needs every update, so not for secure aggregation.
 */
export class FedMedian extends ComposedStrategy {
  constructor(options: StrategyOptions = {}) {
    super("median", { kind: "median" }, plainStep, {}, options);
  }
}

/** Coordinate-wise β-trimmed mean (Yin et al. 2018, Alg. 1 option II). Needs every update. */
export class FedTrimmedMean extends ComposedStrategy {
  constructor(options: { trimFraction?: number | undefined } & StrategyOptions = {}) {
    const trimFraction = options.trimFraction ?? DEFAULT_TRIM_FRACTION;
    trimCount(1, trimFraction); // validates the fraction now rather than at the first aggregation
    super("trimmed-mean", { kind: "trimmed-mean", trimFraction }, plainStep, { trimFraction }, options);
  }
}

/** The options a caller set, leaving out undefined ones so that they do not hide the defaults. */
function defined<K extends string>(options: Partial<Record<K, number | undefined>>, keys: readonly K[]) {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) {
    const v = options[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
