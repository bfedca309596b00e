import { describeModel } from "../core/model-format";
import type { Plan } from "../core/plan";
import { formatEpsilon, planPrivacy } from "../core/privacy/budget";
import { noiseStd } from "../core/privacy/mechanism";
import { h } from "./dom";

/** The plan in plain words: what is trained, on what, and what leaves this computer. */
export function planView(plan: Plan, hash: string): HTMLElement {
  const { training: t, privacy: p } = plan;
  const reports = plan.evaluation.reportMetrics === true;
  return h(
    "dl",
    { "data-testid": "plan" },
    h("dt", {}, "Task"),
    h("dd", {}, taskText(plan)),
    h("dt", {}, "Features"),
    h("dd", {}, featuresText(plan)),
    h("dt", {}, "Model"),
    h("dd", {}, describeModel(plan)),
    h("dt", {}, "Training"),
    h(
      "dd",
      {},
      `${plan.rounds} rounds; each round ${t.epochs} local epochs, batch ${t.batchSize}, ${t.optimizer} at learning rate ${t.learningRate}; at least ${plan.minSites} sites per round`,
    ),
    h("dt", {}, "What leaves"),
    h(
      "dd",
      {},
      `${reports ? "The" : "Only the"} change to the model's weights, clipped to length C = ${p.clipNorm} and blurred with random noise of standard deviation σ = ${noiseStd(p).toPrecision(4)} per weight (noise multiplier z = ${p.noiseMultiplier}). ${reports ? "No patient record." : "No patient record, no row count."}`,
    ),
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
    h("dt", {}, "Privacy guarantee"),
    h("dd", { "data-testid": "plan-privacy" }, privacyText(plan)),
    h("dt", {}, "Plan SHA-256"),
    h("dd", { class: "hash", "data-testid": "plan-hash" }, hash),
  );
}

/**
 * The guarantee in words. Patient-level for this site's own uploads: two versions of the site's data that
 * differ in one patient can give clipped updates anywhere in the ball of radius C, so one patient moves an
 * upload by at most 2C and the noise is scaled to that (src/core/privacy/mechanism.ts).
 */
function privacyText(plan: Plan): string {
  const p = plan.privacy;
  const { epsilonAllRounds, roundsWithinBudget } = planPrivacy(plan);
  const fits =
    roundsWithinBudget >= plan.rounds
      ? `within this site's budget of ε = ${formatEpsilon(p.epsilonBudget)}`
      : `over this site's budget of ε = ${formatEpsilon(p.epsilonBudget)}: this site will take part in at most ${roundsWithinBudget} of them`;
  return (
    `Per patient, for ${plan.evaluation.reportMetrics === true ? "the model updates" : "everything"} this site sends: one patient can change an update by at most 2C = ${2 * p.clipNorm}. ` +
    `All ${plan.rounds} rounds together spend at most ε = ${formatEpsilon(epsilonAllRounds)} at δ = ${p.delta}, ${fits}. ` +
    "Smaller ε is more private; above about 10 the guarantee is weak."
  );
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
