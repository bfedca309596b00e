import type { StrategyName, StrategyState } from "./types";

/**
 * Server optimizers (Reddi et al. 2021, "Adaptive Federated Optimization", Alg. 1 and 2): the round's
 * combined delta Δ_t is a pseudo-gradient pointing downhill, and the server steps along it. Plain FedAvg is
 * x_{t+1} = x_t + Δ_t. Each step reads the previous state and returns a new one (nothing is kept in the
 * instance), so the coordinator can persist it between rounds; state vectors are float32, arithmetic float64.
 */
export interface ServerStep {
  parameters: Float32Array;
  state?: StrategyState;
}

export interface ServerOptimizer {
  readonly stateful: boolean;
  step(
    serverRound: number,
    global: Float32Array,
    delta: Float64Array,
    state: StrategyState | undefined,
  ): ServerStep;
}

/** x_{t+1} = x_t + Δ_t, rounded to float32 once. */
export const plainStep: ServerOptimizer = {
  stateful: false,
  step(_serverRound, global, delta) {
    const parameters = new Float32Array(global.length);
    for (let i = 0; i < parameters.length; i++) parameters[i] = (global[i] as number) + (delta[i] as number);
    return { parameters };
  },
};

/** Hsu et al. 2019 (FedAvgM), Alg. 1, in torch.optim.SGD's convention: v_t = β v_{t−1} + Δ_t; x_{t+1} = x_t + η v_t. */
export interface MomentumOptions {
  serverLearningRate: number;
  momentum: number;
}

/** Reddi et al. 2021, Alg. 2: η server learning rate, β1 and β2 decay rates, τ degree of adaptivity. */
export interface AdaptiveOptions {
  serverLearningRate: number;
  beta1: number;
  beta2: number;
  tau: number;
}

function checkOption(strategy: StrategyName, name: string, value: number, ok: boolean, range: string): void {
  if (!(Number.isFinite(value) && ok))
    throw new RangeError(`${strategy}: ${name} must be ${range}, got ${value}.`);
}

/**
 * The previous round's state, or the initial one in round 1. A state from another strategy, another model
 * size or another round is refused: silently restarting the optimizer would change the model's course.
 */
function previousState(
  strategy: StrategyName,
  serverRound: number,
  global: Float32Array,
  state: StrategyState | undefined,
  initial: Record<string, number>,
): StrategyState {
  if (state === undefined) {
    if (serverRound > 1)
      throw new Error(
        `${strategy} keeps server state between rounds, and round ${serverRound} was given none: the ` +
          `coordinator must store the state returned by round ${serverRound - 1}'s aggregation and pass it ` +
          "back; this is a bug in fedward.",
      );
    const vectors: Record<string, Float32Array> = {};
    for (const [name, fill] of Object.entries(initial))
      vectors[name] = new Float32Array(global.length).fill(fill);
    return { strategy, rounds: 0, vectors };
  }
  const problem =
    state.strategy !== strategy
      ? `was written by ${state.strategy}`
      : state.rounds !== serverRound - 1
        ? `is the state after round ${state.rounds}, not after round ${serverRound - 1}`
        : Object.keys(initial).find((name) => state.vectors[name]?.length !== global.length) !== undefined
          ? `does not hold ${Object.keys(initial).join(" and ")} of ${global.length} weights each`
          : undefined;
  if (problem)
    throw new Error(
      `The server state given to ${strategy} for round ${serverRound} ${problem}; this is a bug in fedward.`,
    );
  return state;
}

export function momentumStep(options: MomentumOptions): ServerOptimizer {
  const { serverLearningRate: eta, momentum: beta } = options;
  checkOption("fedavgm", "serverLearningRate", eta, eta > 0, "above 0");
  checkOption("fedavgm", "momentum", beta, beta >= 0 && beta < 1, "at least 0 and below 1");
  return {
    stateful: true,
    step(serverRound, global, delta, state) {
      const before = previousState("fedavgm", serverRound, global, state, { momentum: 0 });
      const v0 = before.vectors.momentum as Float32Array;
      const momentum = new Float32Array(global.length);
      const parameters = new Float32Array(global.length);
      for (let i = 0; i < global.length; i++) {
        const v = beta * (v0[i] as number) + (delta[i] as number);
        momentum[i] = v;
        parameters[i] = (global[i] as number) + eta * v;
      }
      return { parameters, state: { strategy: "fedavgm", rounds: serverRound, vectors: { momentum } } };
    },
  };
}

/**
 * FedAdam, FedYogi and FedAdagrad (Reddi et al. 2021, Alg. 2), with m_{−1} = 0 and v_{−1} = τ² (the paper
 * asks v_{−1} ≥ τ²; Flower starts v at 0) and no bias correction (as the paper; Flower's FedAdam adds one):
 *   m_t = β1 m_{t−1} + (1 − β1) Δ_t
 *   v_t = v_{t−1} + Δ_t²                                   (Adagrad)
 *   v_t = v_{t−1} − (1 − β2) Δ_t² sign(v_{t−1} − Δ_t²)     (Yogi)
 *   v_t = β2 v_{t−1} + (1 − β2) Δ_t²                       (Adam)
 *   x_{t+1} = x_t + η m_t / (√v_t + τ)
 */
export function adaptiveStep(
  strategy: "fedadam" | "fedyogi" | "fedadagrad",
  options: AdaptiveOptions,
): ServerOptimizer {
  const { serverLearningRate: eta, beta1, beta2, tau } = options;
  checkOption(strategy, "serverLearningRate", eta, eta > 0, "above 0");
  checkOption(strategy, "beta1", beta1, beta1 >= 0 && beta1 < 1, "at least 0 and below 1");
  checkOption(strategy, "beta2", beta2, beta2 >= 0 && beta2 < 1, "at least 0 and below 1");
  checkOption(strategy, "tau", tau, tau > 0, "above 0");
  const second =
    strategy === "fedadam"
      ? (v: number, d2: number) => beta2 * v + (1 - beta2) * d2
      : strategy === "fedyogi"
        ? (v: number, d2: number) => v - (1 - beta2) * d2 * Math.sign(v - d2)
        : (v: number, d2: number) => v + d2;
  return {
    stateful: true,
    step(serverRound, global, delta, state) {
      const before = previousState(strategy, serverRound, global, state, { m: 0, v: tau * tau });
      const m0 = before.vectors.m as Float32Array;
      const v0 = before.vectors.v as Float32Array;
      const m = new Float32Array(global.length);
      const v = new Float32Array(global.length);
      const parameters = new Float32Array(global.length);
      for (let i = 0; i < global.length; i++) {
        const d = delta[i] as number;
        const mi = beta1 * (m0[i] as number) + (1 - beta1) * d;
        const vi = second(v0[i] as number, d * d);
        m[i] = mi;
        v[i] = vi;
        parameters[i] = (global[i] as number) + (eta * mi) / (Math.sqrt(vi) + tau);
      }
      return { parameters, state: { strategy, rounds: serverRound, vectors: { m, v } } };
    },
  };
}
