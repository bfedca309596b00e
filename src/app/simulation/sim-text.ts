import { isDpSgd, type Plan } from "../../core/plan";
import { formatEpsilon } from "../../core/privacy/budget";
import { pct } from "../dom";
import { perUnitText, SITE_LEVEL_LABEL, strengthText } from "../privacy-words";
import type { SimRound } from "./sim-run";

/** The simulation's sentences about privacy, kept apart from the DOM and the charts so tests can read them. */

/** Said before the run starts when the rounds asked for would spend more than the budget at some site. */
export function budgetText(plan: Plan, asked: number, within: number): string {
  const { epsilonBudget, delta } = plan.privacy;
  return (
    `You asked for ${asked} rounds, but the plan's privacy budget (ε = ${formatEpsilon(epsilonBudget)} ` +
    `${perUnitText(plan)} at δ = ${delta}) covers only ${within} round${within === 1 ? "" : "s"} at a ` +
    `hospital: the simulation stops after round ${within}, as a real site refuses to take part in more.`
  );
}

/** The sites' ε after a round: one number when they agree (a plan with a fixed sampling rate), else each. */
export function sitesEpsilonText(epsilons: readonly number[]): string {
  const shown = epsilons.map(formatEpsilon);
  return shown.every((e) => e === shown[0]) ? (shown[0] ?? "—") : shown.join(" / ");
}

/** The status line at the end of a run: accuracy, ε in words, and whether the budget cut the run short. */
export function doneText(plan: Plan, last: SimRound, asked: number, stoppedByBudget: boolean): string {
  const rounds = `${last.round} round${last.round === 1 ? "" : "s"}`;
  const lead = stoppedByBudget
    ? `Stopped by the privacy budget after ${rounds} of the ${asked} asked for`
    : `Done after ${rounds}`;
  return (
    `${lead}: the federated model scores ${pct(last.federated)} on the held-out patients, the pooled model ` +
    `${pct(last.pooled)}; each hospital spent ε = ${formatEpsilon(last.epsilon)} ${perUnitText(plan)} ` +
    `at δ = ${plan.privacy.delta}${isDpSgd(plan) ? "" : ` (${SITE_LEVEL_LABEL.toLowerCase()})`}. ` +
    strengthText(last.epsilon, plan)
  );
}
