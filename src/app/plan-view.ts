import { durationText } from "../client/round-wait";
import { InputError } from "../core/errors";
import { describeModel } from "../core/model-format";
import { dpSgdPrivacy, isDpSgd, type Plan, roundDeadlineMs, siteUpdateTraining } from "../core/plan";
import { formatEpsilon, planPrivacy } from "../core/privacy/budget";
import { noiseStd } from "../core/privacy/mechanism";
import { h } from "./dom";
import {
  optimizerText,
  SITE_LEVEL_LABEL,
  siteLevelWarning,
  strength,
  strengthText,
  unitsWord,
  unitWord,
} from "./privacy-words";

export interface PlanView {
  element: HTMLElement;
  /** This site's training units once data is imported (undefined: none yet): ε and refusals depend on them. */
  setUnits(units: number | undefined): void;
}

/** The plan in plain words: what is trained, on what, and what leaves this computer. */
export function planView(plan: Plan, hash: string, units?: number): PlanView {
  const reports = plan.evaluation.reportMetrics === true;
  const privacy = h("dd", { "data-testid": "plan-privacy" });
  const setUnits = (n: number | undefined) => {
    const g = privacyText(plan, n);
    privacy.textContent = g.text;
    privacy.dataset.mechanism = isDpSgd(plan) ? "dp-sgd" : "site-update";
    privacy.dataset.unit = unitWord(plan);
    if (g.epsilon === undefined) delete privacy.dataset.epsilon;
    else privacy.dataset.epsilon = String(g.epsilon);
    if (g.refused === undefined) delete privacy.dataset.refused;
    else privacy.dataset.refused = g.refused;
    if (g.epsilon === undefined) delete privacy.dataset.strength;
    else privacy.dataset.strength = strength(g.epsilon);
  };
  setUnits(units);
  const element = h(
    "dl",
    { "data-testid": "plan" },
    h("dt", {}, "Task"),
    h("dd", {}, taskText(plan)),
    h("dt", {}, "Features"),
    h("dd", {}, featuresText(plan)),
    h("dt", {}, "Model"),
    h("dd", {}, describeModel(plan)),
    h("dt", {}, "Training"),
    h("dd", {}, trainingText(plan)),
    h("dt", {}, "What leaves"),
    h("dd", {}, leavesText(plan)),
    ...(reports
      ? [
          h("dt", {}, "Metrics sent"),
          h(
            "dd",
            { "data-testid": "plan-metrics" },
            "This plan also sends, each round, how well the global model does on this site's held-out data: " +
              "its accuracy, its loss and the number of held-out examples. The coordinator's admin sees them " +
              "next to the other sites'. This small summary is sent as measured, without noise, so the privacy " +
              "guarantee below (ε) does not cover it.",
          ),
        ]
      : []),
    h(
      "dt",
      {},
      isDpSgd(plan) ? "Privacy guarantee (DP-SGD)" : `Privacy guarantee (${SITE_LEVEL_LABEL.toLowerCase()})`,
    ),
    privacy,
    h("dt", {}, "Plan SHA-256"),
    h("dd", { class: "hash", "data-testid": "plan-hash" }, hash),
  );
  return { element, setUnits };
}

/** How a round of a plan with roundDeadline closes (nothing for a plan without one: it closes at quorum). */
function deadlineText(plan: Plan): string {
  const deadline = roundDeadlineMs(plan);
  if (!deadline) return "";
  return (
    `; a round closes once every enrolled site has sent its update, or after ${durationText(deadline.roundMs)} ` +
    `if ${plan.minSites} have (otherwise its deadline moves on by ${durationText(deadline.extendMs)}); ` +
    "an update that arrives after its round closed is not counted"
  );
}

export function trainingText(plan: Plan): string {
  const t = plan.training;
  const sites = `at least ${plan.minSites} sites per round${deadlineText(plan)}`;
  const opt = `${optimizerText(t)} at learning rate ${t.learningRate}`;
  if (!isDpSgd(plan)) {
    const { epochs, batchSize } = siteUpdateTraining(plan);
    return `${plan.rounds} rounds; each round ${epochs} local epochs, batch ${batchSize}, ${opt}; ${sites}`;
  }
  const p = dpSgdPrivacy(plan);
  const sample =
    p.expectedBatchSize !== undefined
      ? `about ${p.expectedBatchSize} of this site's ${unitsWord(plan)} (each taken with probability ${p.expectedBatchSize}/N, N = this site's training ${unitsWord(plan)})`
      : `each of this site's ${unitsWord(plan)} taken with probability q = ${p.samplingRate}`;
  return (
    `${plan.rounds} rounds; each round ${p.stepsPerRound} steps of DP-SGD, each step on a fresh random sample ` +
    `(${sample}), ${opt}; ${sites}`
  );
}

export function leavesText(plan: Plan): string {
  const p = plan.privacy;
  const reports = plan.evaluation.reportMetrics === true;
  const tail = reports ? "No patient record." : "No patient record, no row count.";
  if (!isDpSgd(plan))
    return (
      `${reports ? "The" : "Only the"} change to the model's weights, clipped to length C = ${p.clipNorm} and blurred ` +
      `with random noise of standard deviation σ = ${noiseStd(p).toPrecision(4)} per weight (noise multiplier ` +
      `z = ${p.noiseMultiplier}), once per round. ${tail}`
    );
  return (
    `${reports ? "The" : "Only the"} change to the model's weights after each round's steps. Every step's ` +
    `gradient is already clipped per ${unitWord(plan)} and noised (below), so the change carries that noise and ` +
    `nothing more is added. ${tail}`
  );
}

export interface GuaranteeText {
  text: string;
  /** ε per unit for the whole plan at this site (or for any N when it does not depend on N). */
  epsilon?: number;
  /** Why this site cannot take part (the expected batch does not fit its N). */
  refused?: string;
}

/**
 * The guarantee in words, before approval. DP-SGD (Abadi et al. 2016): at every step each unit's gradient
 * is clipped to C and noise of std σ = z·C is added to the sum, so adding or removing one unit moves a
 * step's sum by at most C (replacing one moves it by up to 2C, the guarantee of z/2). ε is the RDP
 * accountant's (src/core/privacy/budget.ts) over all rounds × steps at this site's q. Site-update plans:
 * one patient can move the whole update by 2C (src/core/privacy/mechanism.ts).
 */
export function privacyText(plan: Plan, units: number | undefined): GuaranteeText {
  const p = plan.privacy;
  const unit = unitWord(plan);
  const at = `at δ = ${p.delta}`;
  const fitsText = (roundsWithinBudget: number) =>
    roundsWithinBudget >= plan.rounds
      ? `within this site's budget of ε = ${formatEpsilon(p.epsilonBudget)}`
      : `over this site's budget of ε = ${formatEpsilon(p.epsilonBudget)}: this site will take part in at most ${roundsWithinBudget} of them`;
  const covers = `It does not cover ${plan.evaluation.reportMetrics === true ? "the held-out metrics this site reports (above), " : ""}the plan itself, or whether and in how many rounds this site takes part.`;

  if (!isDpSgd(plan)) {
    const { epsilonAllRounds, roundsWithinBudget } = planPrivacy(plan, Math.max(1, units ?? 1));
    return {
      epsilon: epsilonAllRounds,
      text:
        `${siteLevelWarning(plan)} Per site (its whole data set), for ${plan.evaluation.reportMetrics === true ? "the model updates" : "everything"} ` +
        `this site sends: any change to this site's data can change an update by at most 2C = ${2 * p.clipNorm}. ` +
        `All ${plan.rounds} rounds together spend at most ε = ${formatEpsilon(epsilonAllRounds)} ${at}, ` +
        `${fitsText(roundsWithinBudget)}. ` +
        strengthText(epsilonAllRounds, plan),
    };
  }

  const d = dpSgdPrivacy(plan);
  const mechanism =
    `Per ${unit} (DP-SGD): at every step, each ${unit}'s gradient is clipped to length C = ${p.clipNorm}, and ` +
    `random noise of standard deviation σ = z·C = ${(p.noiseMultiplier * p.clipNorm).toPrecision(4)} ` +
    `(noise multiplier z = ${p.noiseMultiplier}) is added to the sum of the clipped gradients. ` +
    `The guarantee compares this site's data with and without any one ${unit} (add/remove one); replacing ` +
    `one ${unit} by another can move a step twice as far (2C), which halves the effective noise. `;
  const perN = d.expectedBatchSize !== undefined;
  if (perN && units === undefined)
    return {
      text:
        `${mechanism}With an expected batch of ${d.expectedBatchSize}, each ${unit}'s chance to be in a step is ` +
        `${d.expectedBatchSize}/N for this site's N training ${unitsWord(plan)}, so ε depends on N: it is shown ` +
        `here once this site's data is imported. ${covers}`,
    };
  // With a fixed sampling rate, ε is the same at any N with an expected batch of at least 1.
  const n = units ?? Math.max(1, Math.ceil(1 / (d.samplingRate as number)));
  let privacy: ReturnType<typeof planPrivacy>;
  let replaceOne: number;
  try {
    privacy = planPrivacy(plan, n);
    replaceOne = planPrivacy(
      { ...plan, privacy: { ...p, noiseMultiplier: p.noiseMultiplier / 2 } },
      n,
    ).epsilonAllRounds;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return { refused: e.message, text: `${mechanism}${e.message}` };
  }
  const rate = perN
    ? `, q = ${d.expectedBatchSize}/${n} = ${((d.expectedBatchSize as number) / n).toPrecision(3)}`
    : "";
  const where =
    units === undefined
      ? `(the same for any number of training ${unitsWord(plan)}: the sampling rate q = ${d.samplingRate} is fixed)`
      : `at this site (${units} training ${unitsWord(plan)}${rate})`;
  return {
    epsilon: privacy.epsilonAllRounds,
    text:
      `${mechanism}It covers everything this site uploads to the coordinator for the whole plan: all ` +
      `${plan.rounds} rounds of ${d.stepsPerRound} steps together spend at most ε = ` +
      `${formatEpsilon(privacy.epsilonAllRounds)} per ${unit} ${at} ${where}, ${fitsText(privacy.roundsWithinBudget)} ` +
      `(about ε = ${formatEpsilon(replaceOne)} for replacing one ${unit}). ${covers} ` +
      strengthText(privacy.epsilonAllRounds, plan),
  };
}

export function taskText(plan: Plan): string {
  const { label } = plan;
  const what = `Predict "${label.positive}" vs "${label.negative}"`;
  if (plan.image) {
    const by = plan.image.labels.key === "folder" ? "the name of its folder" : "the labels CSV";
    return `${what} for each image, labelled by ${by}`;
  }
  if (!plan.cohort) return `${what} from the column "${label.column}"`;
  const index = plan.cohort.indexDate;
  const from =
    index.kind === "fixed"
      ? `from ${index.date}`
      : `from each patient's first ${index.codes ? "qualifying " : ""}encounter${index.onOrAfter ? ` on or after ${index.onOrAfter}` : ""}`;
  return `${what} for each patient in this hospital's FHIR or OMOP export, ${from}; only records dated before that day are used as features.`;
}

export function featuresText(plan: Plan): string {
  if (plan.image) {
    const { width, height, channels, source, window } = plan.image;
    const shown = window
      ? `; DICOM values from ${window.center - window.width / 2} to ${window.center + window.width / 2} (window centre ${window.center}, width ${window.width}; Hounsfield units for CT) shown from black to white`
      : "";
    return `${width}×${height} pixel ${channels === 1 ? "greyscale" : "colour"} images from ${source === "dicom" ? "DICOM files" : "PNG or JPEG files"}${shown}`;
  }
  const names = plan.features.slice(0, 6).map((f) => f.column ?? f.name);
  const categories = plan.features.filter((f) => f.type === "category").length;
  const source = plan.cohort ? "derived from patient records" : "columns";
  return (
    `${plan.features.length} ${source}, ${categories} of them categories ` +
    `(${names.join(", ")}${plan.features.length > names.length ? ", …" : ""})`
  );
}
