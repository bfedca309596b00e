import type { Plan } from "../plan";
import { exactGaussianEpsilon } from "./accounting";

/**
 * The site's own privacy books for one federation. Every release is a Gaussian mechanism of L2 sensitivity
 * 2C and noise std z * 2C (./mechanism.ts), so only its noise multiplier z matters, and the releases compose
 * exactly as Gaussian DP with mu = sqrt(sum 1/z_t^2) (Dong, Roth, Su 2019, Cor. 3.3). No amplification by
 * sampling is claimed: the site takes part in every round it joins, and the coordinator, who picks the
 * sites, is the party the noise protects against.
 */
export interface BudgetCheck {
  /** epsilon of the releases already made, at the plan's delta. */
  spent: number;
  /** epsilon once this round's release is made too. */
  after: number;
  budget: number;
  delta: number;
  /** Whether this round's release stays within the budget. */
  allowed: boolean;
}

/** Before training a round: what it would cost, given the noise multipliers of the releases already made. */
export function checkBudget(privacy: Plan["privacy"], pastNoiseMultipliers: readonly number[]): BudgetCheck {
  const { delta, epsilonBudget: budget, noiseMultiplier } = privacy;
  const spent = exactGaussianEpsilon(pastNoiseMultipliers, delta);
  const after = exactGaussianEpsilon([...pastNoiseMultipliers, noiseMultiplier], delta);
  return { spent, after, budget, delta, allowed: after <= budget };
}

/** epsilon after all of the plan's rounds, and how many rounds fit in the budget (for the plan's summary). */
export function planPrivacy(plan: Plan): { epsilonAllRounds: number; roundsWithinBudget: number } {
  const { noiseMultiplier, delta, epsilonBudget } = plan.privacy;
  const epsilonAfter = (rounds: number) =>
    exactGaussianEpsilon(new Array<number>(rounds).fill(noiseMultiplier), delta);
  // epsilon grows with the number of rounds, so the rounds that fit are found by bisection.
  let lo = 0;
  let hi = plan.rounds;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (epsilonAfter(mid) <= epsilonBudget) lo = mid;
    else hi = mid - 1;
  }
  return { epsilonAllRounds: epsilonAfter(plan.rounds), roundsWithinBudget: lo };
}

/** In plain words, why a site does not take part in a round. */
export function refusalText(check: BudgetCheck, round: number): string {
  return (
    `This site does not take part in round ${round}: its privacy budget would run out. ` +
    `Releases so far spent ε = ${formatEpsilon(check.spent)}; one more would bring it to ` +
    `ε = ${formatEpsilon(check.after)}, over the plan's budget of ε = ${formatEpsilon(check.budget)} ` +
    `(δ = ${check.delta}). Nothing more leaves this computer for this federation.`
  );
}

export function formatEpsilon(epsilon: number): string {
  if (epsilon === 0) return "0";
  if (epsilon >= 1000) return epsilon.toFixed(0);
  return epsilon.toPrecision(4);
}
