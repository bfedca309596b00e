import { DEFAULT_MOMENTUM, isDpSgd, type Plan, privacyUnit } from "../core/plan";
import { formatEpsilon } from "../core/privacy/budget";

/**
 * The privacy guarantee in the same words wherever ε is shown (plan view, privacy meter, model card,
 * simulation): the unit it is for, the mechanism, and how strong it is.
 */

/** What one unit of privacy is in this plan: "patient", "row" or "image" (src/core/plan.ts privacyUnit). */
export function unitWord(plan: Plan): "patient" | "row" | "image" {
  return privacyUnit(plan);
}

export function unitsWord(plan: Plan): string {
  return `${unitWord(plan)}s`;
}

/**
 * The guarantee's unit as `fedward privacy` prints it: a dp-sgd plan's unit, or for a site-update plan the
 * site's whole data set (its clipped update can move anywhere in the C-ball whatever the data).
 */
export function perUnitText(plan: Plan): string {
  return isDpSgd(plan) ? `per ${unitWord(plan)}` : "per site (its whole data set)";
}

/** Whom the guarantee protects, for "what the uploads could reveal about …". */
function about(plan: Plan): string {
  return isDpSgd(plan) ? `one ${unitWord(plan)}` : "this site's data";
}

/** Above this ε the guarantee is called weak and the meter is never green. */
export const WEAK_EPSILON = 10;
/** At or below this ε the guarantee is called strong. */
export const STRONG_EPSILON = 1;

export type Strength = "strong" | "moderate" | "weak";

/**
 * How strong ε is, in three words only: at most 1 strong, up to 10 moderate, above 10 weak: the tiers of
 * Ponomareva et al. 2023 ("How to DP-fy ML"): ε <= 1 strong, ε <= 10 reasonable, above 10 weak.
 */
export function strength(epsilon: number): Strength {
  if (epsilon <= STRONG_EPSILON) return "strong";
  if (epsilon <= WEAK_EPSILON) return "moderate";
  return "weak";
}

/** One sentence on what the ε means here, for a plain reader. */
export function strengthText(epsilon: number, plan: Plan): string {
  const e = formatEpsilon(epsilon);
  switch (strength(epsilon)) {
    case "strong":
      return `ε = ${e} is a strong guarantee: the uploads say almost nothing about ${about(plan)}.`;
    case "moderate":
      return (
        `ε = ${e} is a moderate guarantee (smaller ε is more private; at most ${STRONG_EPSILON} is strong, ` +
        `above ${WEAK_EPSILON} weak).`
      );
    default:
      return (
        `ε = ${e} is above ${WEAK_EPSILON}: the guarantee is weak, and says little about what the uploads ` +
        `could reveal about ${about(plan)}.`
      );
  }
}

/** The label an old plan's guarantee carries everywhere it is shown. */
export const SITE_LEVEL_LABEL = "Site-level noise only";

/** For a site-update plan: what its ε covers, and why it is not DP-SGD's. */
export function siteLevelWarning(plan: Plan): string {
  return (
    `${SITE_LEVEL_LABEL}: this plan uses the older mechanism, which clips this site's whole round update and ` +
    "noises it once (σ = z·2C). Its ε holds for the site's whole data set at once (any change to it moves the " +
    `clipped update by at most 2C), so it also bounds what the uploads reveal about one ${unitWord(plan)}; but ` +
    "noise that hides a whole data set drowns what the model learns, so plans of this kind that learn anything " +
    `use so little noise that ε is very large. It does not protect individual ${unitsWord(plan)} the way DP-SGD ` +
    `(each ${unitWord(plan)}'s gradient clipped and noised at every step) does.`
  );
}

/** The optimizer in words, as the plan view and the model card name it. */
export function optimizerText(training: Plan["training"]): string {
  if (training.optimizer === "momentum") return `SGD with momentum ${training.momentum ?? DEFAULT_MOMENTUM}`;
  return training.optimizer === "adam" ? "Adam" : "SGD";
}
