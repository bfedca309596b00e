import { assertSameLength } from "./vector";

/** One site's contribution to a round, as the coordinator stores it. */
export interface FitResult {
  siteId: string;
  delta: Float32Array;
  numExamples: number;
}

/** A site that was expected but did not deliver: data, not an exception (Flower's failures list). */
export interface FitFailure {
  siteId: string;
  reason: string;
}

export interface AggregateResult {
  parameters: Float32Array;
  metrics: Record<string, number>;
}

/** The coordinator's strategy (Flower's Strategy.aggregate_fit, reduced to what fedward needs). */
export interface Strategy {
  readonly name: string;
  aggregateFit(
    serverRound: number,
    global: Float32Array,
    results: FitResult[],
    failures: FitFailure[],
  ): AggregateResult;
}

/**
 * FedAvg over weight deltas with an unweighted mean: next = global + (1/K) * sum_k delta_k.
 * Unweighted on purpose: each site's delta is clipped to C and noised at the site, so with equal weights
 * one site moves the mean by at most C/K whatever it claims; weighting by numExamples would let a site
 * inflate its influence by misreporting its count, would void that bound, and would publish each site's
 * dataset size to the others through the model.
 */
export class FedAvgUnweighted implements Strategy {
  readonly name = "fedavg-unweighted";

  aggregateFit(serverRound: number, global: Float32Array, results: FitResult[], failures: FitFailure[]) {
    if (results.length === 0) throw new RangeError(`round ${serverRound}: no results to aggregate`);
    const sum = new Float64Array(global.length);
    for (const r of results) {
      assertSameLength(r.delta, global, `round ${serverRound}, site ${r.siteId}`);
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (r.delta[i] as number);
    }
    const parameters = new Float32Array(global.length);
    for (let i = 0; i < parameters.length; i++) {
      parameters[i] = (global[i] as number) + (sum[i] as number) / results.length;
    }
    return {
      parameters,
      metrics: {
        sites: results.length,
        failures: failures.length,
        numExamples: results.reduce((n, r) => n + r.numExamples, 0),
      },
    };
  }
}
