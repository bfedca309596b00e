import { isDpSgd, type Plan } from "../plan";
import { exactGaussianEpsilon, INTEGER_RDP_ORDERS, rdpPoissonGaussian, rdpToEpsilon } from "./accounting";
import { dpSgdSchedule } from "./dp-sgd";

/**
 * The site's own privacy books for one federation. Each round's release costs what its mechanism says:
 *
 * - "site-update" (plans made before DP-SGD): one Gaussian release of L2 sensitivity 2C and noise std
 *   z * 2C (./mechanism.ts), so only z matters, and the releases compose exactly as Gaussian DP with
 *   mu = sqrt(sum 1/z_t^2) (Dong, Roth, Su 2019, Cor. 3.3). No amplification by sampling is claimed: the
 *   site takes part in every round it joins, and the coordinator, who picks the sites, is the party the
 *   noise protects against.
 * - "dp-sgd": `steps` Poisson-subsampled Gaussian releases at rate q with noise multiplier z (sensitivity C
 *   under add/remove-one of a unit, ./dp-sgd.ts), accounted by Rényi DP at integer orders (Mironov, Talwar,
 *   Zhang 2019; ./accounting.ts INTEGER_RDP_ORDERS says why integer orders hold for the discrete Gaussian),
 *   composed over steps and rounds by adding RDP (Mironov 2017, Prop. 1), then converted to epsilon at the
 *   plan's delta (Balle et al. 2020, Thm 21). q = 1 is accounted the same way (RDP, not exact GDP), so one
 *   plan is always accounted by one method.
 */
export type ReleaseCost =
  | { mechanism: "site-update"; noiseMultiplier: number }
  | { mechanism: "dp-sgd"; noiseMultiplier: number; samplingRate: number; steps: number };

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

/**
 * What one round costs at this site, which has `units` training units (patients, rows or images; only a
 * dp-sgd plan's cost depends on them, through q = B / N). Throws InputError (dpSgdSchedule) when a dp-sgd
 * plan's expected batch is below 1 or above N here.
 */
export function roundCost(plan: Plan, units: number): ReleaseCost {
  const { noiseMultiplier } = plan.privacy;
  if (!isDpSgd(plan)) return { mechanism: "site-update", noiseMultiplier };
  const { samplingRate, steps } = dpSgdSchedule(plan, units);
  return { mechanism: "dp-sgd", noiseMultiplier, samplingRate, steps };
}

/**
 * epsilon of these releases together at delta: exact GDP for site-update releases, RDP at integer orders for
 * dp-sgd ones. One federation uses one plan, hence one mechanism; a list that mixes them is our bug.
 */
export function epsilonSpent(costs: readonly ReleaseCost[], delta: number): number {
  if (costs.length === 0) return 0;
  const mechanism = costs[0]?.mechanism;
  if (costs.some((c) => c.mechanism !== mechanism))
    throw new Error(
      "A privacy ledger mixes site-update and dp-sgd releases, which one plan cannot make; this is a bug in fedward.",
    );
  if (mechanism === "site-update")
    return exactGaussianEpsilon(
      costs.map((c) => c.noiseMultiplier),
      delta,
    );
  return rdpToEpsilon(INTEGER_RDP_ORDERS, dpSgdRdp(costs), delta).epsilon;
}

/**
 * Summed RDP of dp-sgd releases at INTEGER_RDP_ORDERS. Releases with the same q and z are grouped and their
 * steps added first (T steps at one rate cost T times one step), so r equal rounds give bit for bit what the
 * plan view computes for r rounds, and a ledger of 10^4 rounds costs one series per group.
 */
function dpSgdRdp(costs: readonly ReleaseCost[]): number[] {
  const groups = new Map<string, { q: number; z: number; steps: number }>();
  for (const c of costs) {
    if (c.mechanism !== "dp-sgd") continue;
    const key = `${c.samplingRate}/${c.noiseMultiplier}`;
    const group = groups.get(key);
    if (group) group.steps += c.steps;
    else groups.set(key, { q: c.samplingRate, z: c.noiseMultiplier, steps: c.steps });
  }
  const total = INTEGER_RDP_ORDERS.map(() => 0);
  for (const { q, z, steps } of groups.values()) {
    const rdp = rdpPoissonGaussian(q, z, steps, INTEGER_RDP_ORDERS);
    rdp.forEach((r, k) => {
      total[k] = (total[k] as number) + r;
    });
  }
  return total;
}

/** Before training a round at a site with `units` training units: what it would cost, given the releases already made. */
export function checkBudget(plan: Plan, units: number, past: readonly ReleaseCost[]): BudgetCheck {
  const { delta, epsilonBudget: budget } = plan.privacy;
  const spent = epsilonSpent(past, delta);
  const after = epsilonSpent([...past, roundCost(plan, units)], delta);
  return { spent, after, budget, delta, allowed: after <= budget };
}

/**
 * For the plan's summary at a site with `units` training units: epsilon after each round r = 1..rounds
 * (epsilonPerRound[r - 1]), after all of them, and how many rounds fit in the budget. Throws InputError when
 * a dp-sgd plan's expected batch does not fit this site.
 */
export function planPrivacy(
  plan: Plan,
  units: number,
): { epsilonAllRounds: number; roundsWithinBudget: number; epsilonPerRound: number[] } {
  const cost = roundCost(plan, units);
  const { delta, epsilonBudget } = plan.privacy;
  const epsilonPerRound: number[] = [];
  if (cost.mechanism === "site-update") {
    const costs: ReleaseCost[] = [];
    for (let r = 1; r <= plan.rounds; r++) {
      costs.push(cost);
      epsilonPerRound.push(epsilonSpent(costs, delta));
    }
  } else {
    // epsilonSpent of r equal rounds, without re-running the series r times.
    const oneStep = rdpPoissonGaussian(cost.samplingRate, cost.noiseMultiplier, 1, INTEGER_RDP_ORDERS);
    for (let r = 1; r <= plan.rounds; r++) {
      const steps = r * cost.steps;
      const rdp = oneStep.map((x) => steps * x);
      epsilonPerRound.push(rdpToEpsilon(INTEGER_RDP_ORDERS, rdp, delta).epsilon);
    }
  }
  // epsilon grows with the rounds, so the rounds within budget are a prefix.
  const roundsWithinBudget = epsilonPerRound.filter((e) => e <= epsilonBudget).length;
  return { epsilonAllRounds: epsilonPerRound.at(-1) as number, roundsWithinBudget, epsilonPerRound };
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
