/**
 * The one-run privacy audit of Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1) Training Run"
 * (NeurIPS 2023, arXiv:2305.08846). m canaries are each put into the training set on an independent fair
 * coin; the auditor looks at the trained model, guesses "in" for its k+ most confident canaries and "out"
 * for its k- least confident, and abstains on the rest. Their main theorem bounds how often r = k+ + k-
 * such guesses can be right if training is (ε, δ)-DP with respect to adding or removing one canary:
 *
 *   P[W >= v] <= f(v) + 2 m δ · max_{i = 1..m} (f(v - i) - f(v)) / i,   f(v) = P[Binomial(r, e^ε/(1 + e^ε)) >= v]
 *
 * (W the number of correct guesses; with δ = 0 it says W is dominated by r tosses of ε-randomized
 * response, Thm 1 of the paper). So v correct guesses refute (ε, δ)-DP at level β when the right side is
 * below β, and the largest such ε is an empirical lower bound on the training's true ε, at confidence
 * 1 - β (their Appendix D does this by bisection on ε; so does this file, in log space).
 *
 * Pure maths on counts: the canaries and the training run live in src/cli/audit.ts.
 */

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
/** Below this n, ln n! is a sum of logs (at most ~1e-13 off); above, Stirling's series (error < 1/(1680 n^7)). */
const EXACT_LOG_FACTORIALS = 256;
const logFactorials = new Float64Array(EXACT_LOG_FACTORIALS);
for (let n = 2; n < EXACT_LOG_FACTORIALS; n++) {
  logFactorials[n] = (logFactorials[n - 1] as number) + Math.log(n);
}

/** ln n! for an integer n >= 0. */
export function logFactorial(n: number): number {
  if (n < EXACT_LOG_FACTORIALS) return logFactorials[n] as number;
  const inv = 1 / n;
  const inv2 = inv * inv;
  // Stirling's series, to the n^-5 term (Abramowitz & Stegun 6.1.41).
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 / 1260));
  return n * Math.log(n) - n + HALF_LOG_2PI + 0.5 * Math.log(n) + series;
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/** log(sum exp(terms)), -Infinity for no terms. */
function logSumExp(terms: readonly number[]): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const t of terms) if (t > max) max = t;
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - max);
  return max + Math.log(sum);
}

function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/**
 * ln P[Binomial(n, q) = k] for k = 0..n, where q = e^ε/(1 + e^ε) is the accuracy of ε-randomized response:
 * ln q = -log1p(e^-ε) and ln(1 - q) = -ε - log1p(e^-ε), neither rounded through q itself, so that
 * 1 - q stays exact for large ε.
 */
function logBinomialPmf(n: number, epsilon: number): Float64Array {
  const logQ = -Math.log1p(Math.exp(-epsilon));
  const log1mQ = -epsilon + logQ;
  const out = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) out[k] = logChoose(n, k) + k * logQ + (n - k) * log1mQ;
  return out;
}

export interface AuditCounts {
  /** m: canaries, each included on an independent fair coin. */
  canaries: number;
  /** r = k+ + k-: guesses made (the auditor abstained on the other m - r canaries). */
  guesses: number;
  /** v: guesses that were right. */
  correct: number;
}

function checkCounts({ canaries: m, guesses: r, correct: v }: AuditCounts): void {
  if (!(Number.isSafeInteger(m) && m >= 1)) {
    throw new RangeError(`canaries must be a whole number, 1 or more, got ${m}.`);
  }
  if (!(Number.isSafeInteger(r) && r >= 0 && r <= m)) {
    throw new RangeError(`guesses must be a whole number from 0 to the ${m} canaries, got ${r}.`);
  }
  if (!(Number.isSafeInteger(v) && v >= 0 && v <= r)) {
    throw new RangeError(`correct must be a whole number from 0 to the ${r} guesses, got ${v}.`);
  }
}

function checkDelta(delta: number): void {
  if (!(delta >= 0 && delta < 1)) {
    throw new RangeError(
      `delta must be at least 0 and below 1, got ${delta}; use the plan's delta, e.g. 1e-5.`,
    );
  }
}

/**
 * ln of the p-value of v correct guesses out of r under the hypothesis "(ε, δ)-DP": the right side of the
 * theorem above, capped at 1 (ln 0). The max over i stops at v: for i > v, f(v - i) = 1 so the numerator
 * no longer grows while i does.
 */
export function logAuditPValue(counts: AuditCounts & { epsilon: number; delta: number }): number {
  checkCounts(counts);
  checkDelta(counts.delta);
  const { canaries: m, guesses: r, correct: v, epsilon, delta } = counts;
  if (!(epsilon >= 0 && epsilon < Number.POSITIVE_INFINITY)) {
    throw new RangeError(`epsilon must be a finite number >= 0, got ${epsilon}.`);
  }
  if (v === 0) return 0;
  const pmf = logBinomialPmf(r, epsilon);
  const logTail = logSumExp(Array.from(pmf.subarray(v)));
  if (delta === 0) return Math.min(0, logTail);
  // ln max_i (P[v - i <= Bin < v] / i), the partial sums built up in log space from k = v - 1 down.
  let logBelow = Number.NEGATIVE_INFINITY;
  let logAlpha = Number.NEGATIVE_INFINITY;
  for (let i = 1; i <= v; i++) {
    logBelow = logAdd(logBelow, pmf[v - i] as number);
    logAlpha = Math.max(logAlpha, logBelow - Math.log(i));
  }
  return Math.min(0, logAdd(logTail, Math.log(2 * m * delta) + logAlpha));
}

/** The p-value itself (see logAuditPValue). */
export function auditPValue(counts: AuditCounts & { epsilon: number; delta: number }): number {
  return Math.exp(logAuditPValue(counts));
}

/** Bisection stops when the bracket is this narrow (absolute, in ε). */
const EPSILON_TOLERANCE = 1e-9;
const MAX_EPSILON = 1e4;

/**
 * The audit's ε lower bound at confidence 1 - β: the largest ε (to 1e-9, rounded down) whose p-value is
 * still below β, i.e. training is not (ε, δ)-DP for any ε below it unless an event of probability < β
 * happened. 0 when v is no surprise even at ε = 0 (guesses at chance). The p-value grows with ε (the
 * paper's bisection relies on it too), so the bisection keeps lo refuted and hi not.
 */
export function epsilonLowerBound(counts: AuditCounts & { delta: number; beta: number }): number {
  checkCounts(counts);
  checkDelta(counts.delta);
  const { beta } = counts;
  if (!(beta > 0 && beta < 1)) {
    throw new RangeError(
      `beta must lie strictly between 0 and 1, got ${beta}; it is 1 minus the confidence, e.g. 0.05.`,
    );
  }
  const logBeta = Math.log(beta);
  const refutes = (epsilon: number) => logAuditPValue({ ...counts, epsilon }) < logBeta;
  if (!refutes(0)) return 0;
  let lo = 0;
  let hi = 1;
  while (refutes(hi)) {
    lo = hi;
    hi *= 2;
    // Only a p-value that never reaches β gets here (it does reach it: f(v) -> 1 as ε grows).
    if (hi > MAX_EPSILON) return lo;
  }
  while (hi - lo > EPSILON_TOLERANCE) {
    const mid = lo + (hi - lo) / 2;
    if (refutes(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The auditor's guesses: "in" for the kPlus highest scores, "out" for the kMinus lowest, abstain on the
 * rest. Ties are broken by canary index, which was fixed before the coins were tossed. Returns r and v.
 */
export function scoreGuesses(
  scores: ArrayLike<number>,
  included: ArrayLike<boolean>,
  kPlus: number,
  kMinus: number,
): AuditCounts {
  const m = scores.length;
  if (included.length !== m) {
    throw new RangeError(
      `scores and included must have one entry per canary, got ${m} and ${included.length}.`,
    );
  }
  if (m === 0) throw new RangeError("There are no canaries to score; use at least one.");
  for (const [name, k] of [
    ["kPlus", kPlus],
    ["kMinus", kMinus],
  ] as const) {
    if (!(Number.isSafeInteger(k) && k >= 0))
      throw new RangeError(`${name} must be a whole number >= 0, got ${k}.`);
  }
  if (kPlus + kMinus > m) {
    throw new RangeError(`kPlus + kMinus = ${kPlus + kMinus} guesses exceed the ${m} canaries.`);
  }
  for (let i = 0; i < m; i++) {
    if (Number.isNaN(scores[i])) throw new RangeError(`scores[${i}] is NaN; every canary needs a score.`);
  }
  const order = Array.from({ length: m }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number) || a - b,
  );
  let correct = 0;
  for (let j = 0; j < kPlus; j++) if (included[order[j] as number]) correct++;
  for (let j = m - kMinus; j < m; j++) if (!included[order[j] as number]) correct++;
  return { canaries: m, guesses: kPlus + kMinus, correct };
}

export interface AuditResult extends AuditCounts {
  kPlus: number;
  kMinus: number;
  epsilonLowerBound: number;
}

/**
 * The best bound over a fixed grid of (k+, k-) choices, each tested at level β / grid size (Bonferroni),
 * so that picking the best of them after seeing the scores still leaves confidence 1 - β overall.
 */
export function auditScores(
  scores: ArrayLike<number>,
  included: ArrayLike<boolean>,
  options: { delta: number; beta: number; choices: ReadonlyArray<readonly [number, number]> },
): AuditResult {
  const { delta, beta, choices } = options;
  if (choices.length === 0) throw new RangeError("choices must list at least one (kPlus, kMinus) pair.");
  let best: AuditResult | undefined;
  for (const [kPlus, kMinus] of choices) {
    const counts = scoreGuesses(scores, included, kPlus, kMinus);
    const bound = epsilonLowerBound({ ...counts, delta, beta: beta / choices.length });
    if (best === undefined || bound > best.epsilonLowerBound) {
      best = { ...counts, kPlus, kMinus, epsilonLowerBound: bound };
    }
  }
  return best as AuditResult;
}
