import type { Plan } from "../plan";
import {
  FedAdagrad,
  FedAdam,
  FedAvgM,
  FedAvgUnweighted,
  FedAvgWeighted,
  FedMedian,
  FedTrimmedMean,
  FedYogi,
} from "./strategies";
import type { FederatedStrategy } from "./types";

/** The plan's strategy, its settings with the defaults filled in; no aggregation field: unweighted FedAvg. */
export function strategyFor(plan: Pick<Plan, "aggregation">): FederatedStrategy {
  const a = plan.aggregation;
  if (!a) return new FedAvgUnweighted();
  const { proximalMu } = a;
  switch (a.strategy) {
    case "fedavg":
      return new FedAvgUnweighted({ proximalMu });
    case "fedavg-weighted":
      return new FedAvgWeighted({ proximalMu });
    case "fedavgm":
      return new FedAvgM({ serverLearningRate: a.serverLearningRate, momentum: a.momentum, proximalMu });
    case "fedadam":
      return new FedAdam({ ...adaptiveOf(a), beta2: a.beta2, proximalMu });
    case "fedyogi":
      return new FedYogi({ ...adaptiveOf(a), beta2: a.beta2, proximalMu });
    case "fedadagrad":
      return new FedAdagrad({ ...adaptiveOf(a), proximalMu });
    case "median":
      return new FedMedian({ proximalMu });
    case "trimmed-mean":
      return new FedTrimmedMean({ trimFraction: a.trimFraction, proximalMu });
  }
}

function adaptiveOf(a: NonNullable<Plan["aggregation"]>) {
  return { serverLearningRate: a.serverLearningRate, beta1: a.beta1, tau: a.tau };
}

/** FedProx's μ for the site's trainer (addProximalTerm), or undefined when the plan sets none. */
export function proximalMuOf(plan: Pick<Plan, "aggregation">): number | undefined {
  return plan.aggregation?.proximalMu;
}

const TITLES: Record<FederatedStrategy["name"], string> = {
  fedavg: "FedAvg, unweighted: the next model is the current one plus the mean of the sites' updates",
  "fedavg-weighted":
    "FedAvg weighted by examples: each site's update counts in proportion to its number of training examples",
  fedavgm: "FedAvgM (Hsu et al. 2019): FedAvg with momentum at the coordinator",
  fedadam: "FedAdam (Reddi et al. 2021): an Adam step at the coordinator along the mean update",
  fedyogi: "FedYogi (Reddi et al. 2021): a Yogi step at the coordinator along the mean update",
  fedadagrad: "FedAdagrad (Reddi et al. 2021): an Adagrad step at the coordinator along the mean update",
  median: "Coordinate-wise median (Yin et al. 2018) of the sites' updates",
  "trimmed-mean": "Coordinate-wise trimmed mean (Yin et al. 2018) of the sites' updates",
};

/**
 * What the plan view shows a site about aggregation before it approves: the strategy, its settings, and
 * what each choice discloses to the coordinator.
 */
export function describeAggregation(plan: Pick<Plan, "aggregation">): string[] {
  const strategy = strategyFor(plan);
  const settings = Object.entries(strategy.settings).filter(([name]) => name !== "proximalMu");
  const lines = [
    settings.length > 0
      ? `${TITLES[strategy.name]} (${settings.map(([k, v]) => `${k} ${v}`).join(", ")}).`
      : `${TITLES[strategy.name]}.`,
  ];
  if (strategy.weighted)
    lines.push(
      "Your site sends its number of training examples with every update, so the coordinator learns the size " +
        "of your training set each round; a site that overstates its count pulls the model towards its own data.",
    );
  else
    lines.push(
      "Your site does not send its number of training examples: every site's update counts the same.",
    );
  if (strategy.needsEveryUpdate)
    lines.push(
      "The coordinator sorts each weight across every site's individual update, so it needs each update on its " +
        "own: this cannot be combined with secure aggregation, which reveals only the sum.",
    );
  if (strategy.stateful)
    lines.push(
      "The coordinator keeps optimizer state between rounds, computed from the combined updates only.",
    );
  const mu = strategy.settings.proximalMu;
  if (mu)
    lines.push(
      `FedProx (Li et al. 2020): your site's training adds ${mu} × (w − w_global) to each gradient, which keeps its ` +
        "update close to the global model; it uses no data and costs no privacy.",
    );
  return lines;
}
