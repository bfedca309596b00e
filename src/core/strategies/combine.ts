import { assertSameLength } from "../vector";
import type { FitFailure, FitResult, RunningSum } from "./types";

/**
 * How a round's updates become one pseudo-gradient Δ_t (the server optimizer then steps along it): a mean
 * (from a running sum, so a coordinator may add each update as it arrives) or a coordinate-wise robust
 * statistic (which needs every update). Everything sums in float64.
 */

export function emptySum(numWeights: number): RunningSum {
  return { sum: new Float64Array(numWeights), weight: 0, sites: 0, numExamples: 0 };
}

/** A result's weight in an example-weighted mean; the count is untrusted, so anything but a count is refused. */
function exampleWeight(result: FitResult, serverRound: number): number {
  const n = result.numExamples;
  if (!(Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(
      `round ${serverRound}, site ${result.siteId}: numExamples is ${n}, not a count of examples; ` +
        "an example-weighted mean needs a whole number, 0 or more.",
    );
  return n;
}

/** Adds one update into the sum (in place) with weight 1, or numExamples when `weighted`. */
export function addToSum(acc: RunningSum, result: FitResult, weighted: boolean, serverRound: number): void {
  assertSameLength(result.delta, acc.sum, `round ${serverRound}, site ${result.siteId}`);
  const w = weighted ? exampleWeight(result, serverRound) : 1;
  const { sum } = acc;
  const { delta } = result;
  // w = 1 adds each delta exactly, so the unweighted mean's bits match summing the deltas themselves.
  for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + w * (delta[i] as number);
  acc.weight += w;
  acc.sites += 1;
  acc.numExamples += result.numExamples;
}

export function sumOf(
  results: FitResult[],
  numWeights: number,
  weighted: boolean,
  serverRound: number,
): RunningSum {
  const acc = emptySum(numWeights);
  for (const r of results) addToSum(acc, r, weighted, serverRound);
  return acc;
}

export function noResults(serverRound: number, failures: FitFailure[]): RangeError {
  return new RangeError(
    `round ${serverRound}: no results to aggregate (${failures.length} site(s) failed); ` +
      "a round can close only when at least one update was accepted.",
  );
}

/** Σ w_k Δ_k / Σ w_k, or a clear error where that is 0/0 (never NaN). */
export function meanOfSum(
  acc: RunningSum,
  numWeights: number,
  serverRound: number,
  failures: FitFailure[],
): Float64Array {
  assertSameLength(acc.sum, { length: numWeights }, `round ${serverRound}, the running sum`);
  if (acc.sites === 0) throw noResults(serverRound, failures);
  if (!(acc.weight > 0))
    throw new RangeError(
      `round ${serverRound}: the example-weighted mean has no weight: all ${acc.sites} result(s) report ` +
        "numExamples = 0. Sites must send their example counts when the plan's aggregation is " +
        '"fedavg-weighted", or the plan must use the unweighted "fedavg".',
    );
  const mean = new Float64Array(numWeights);
  for (let i = 0; i < numWeights; i++) mean[i] = (acc.sum[i] as number) / acc.weight;
  return mean;
}

/**
 * Trimmed per side from k updates with fraction β (Yin et al. 2018, Def. 2: remove the largest and smallest
 * β fraction): floor(βk). The 1e-9 keeps 0.29 × 100 (28.999999999999996 in binary) at 29. β < 1/2 leaves at
 * least one value.
 */
export function trimCount(count: number, trimFraction: number): number {
  if (!(trimFraction >= 0 && trimFraction < 0.5))
    throw new RangeError(`A trimmed mean's fraction must be at least 0 and below 0.5, got ${trimFraction}.`);
  return Math.floor(trimFraction * count + 1e-9);
}

/**
 * Coordinate-wise statistic of the deltas (Yin et al. 2018, "Byzantine-Robust Distributed Learning"): for
 * each weight, sort the sites' values and take the median (the mean of the two middle ones for an even
 * count) or the mean of what is left after trimming `trim` values from each end. Unweighted.
 */
export function coordinateWise(
  kind: { median: true } | { trim: number },
  results: FitResult[],
  numWeights: number,
  serverRound: number,
  failures: FitFailure[],
): Float64Array {
  if (results.length === 0) throw noResults(serverRound, failures);
  for (const r of results)
    assertSameLength(r.delta, { length: numWeights }, `round ${serverRound}, site ${r.siteId}`);
  const k = results.length;
  const column = new Float64Array(k);
  const out = new Float64Array(numWeights);
  const trim = "trim" in kind ? kind.trim : 0;
  if (2 * trim >= k)
    throw new RangeError(`round ${serverRound}: trimming ${trim} of ${k} values from each end leaves none.`);
  for (let i = 0; i < numWeights; i++) {
    for (let s = 0; s < k; s++) column[s] = (results[s] as FitResult).delta[i] as number;
    column.sort();
    if ("median" in kind) {
      const mid = k >> 1;
      out[i] =
        k % 2 === 1 ? (column[mid] as number) : ((column[mid - 1] as number) + (column[mid] as number)) / 2;
    } else {
      let sum = 0;
      for (let s = trim; s < k - trim; s++) sum += column[s] as number;
      out[i] = sum / (k - 2 * trim);
    }
  }
  return out;
}
