import { describeModel } from "../core/model-format";
import { dpSgdPrivacy, isDpSgd, type Plan } from "../core/plan";
import { formatEpsilon } from "../core/privacy/budget";
import type { DatasetRow, ReleaseRow, RoundRow } from "../store/db";
import { countsAgainstBudget } from "../store/ledger";
import { featuresText, taskText } from "./plan-view";
import { perUnitText, SITE_LEVEL_LABEL, siteLevelWarning, strengthText, unitWord } from "./privacy-words";

/** Everything the card says comes from the site's own IndexedDB: plan, dataset manifest, rounds, ledger. */
export interface ModelCardInput {
  plan: Plan;
  planHash: string;
  siteLabel: string;
  coordinatorUrl: string;
  dataset: Pick<
    DatasetRow,
    | "fileName"
    | "numTrain"
    | "numHoldout"
    | "positives"
    | "negatives"
    | "rowsRead"
    | "rowsSkipped"
    | "sources"
  >;
  rounds: readonly RoundRow[];
  releases: readonly ReleaseRow[];
  /** Epsilon spent by the releases that count (withheld ones do not). */
  spent: number;
  /** The final model's version (rounds aggregated), or undefined while training is not finished. */
  modelVersion: number | undefined;
  generatedAt: Date;
}

const pct = (x: number | undefined) => (x === undefined ? "not measured" : `${(x * 100).toFixed(1)}%`);
const num = (x: number | undefined) => (x === undefined ? "not measured" : x.toFixed(3));

/** A plain-language model card in Markdown (it reads as plain text too). */
export function modelCardText(c: ModelCardInput): string {
  const { plan, dataset: d } = c;
  const total = d.positives + d.negatives;
  const share = (n: number) => (total ? `${((100 * n) / total).toFixed(1)}%` : "—");
  const sent = c.releases.filter((r) => r.sentAt !== undefined).length;
  const withheld = c.releases.filter((r) => !countsAgainstBudget(r)).map((r) => r.round);
  const evaluated = c.rounds.filter((r) => r.accuracyAfter !== undefined).sort((a, b) => a.round - b.round);
  const last = evaluated.at(-1);
  const first = c.rounds.find((r) => r.round === 1);
  const files = d.sources?.length
    ? d.sources.map((s) => `${s.name} (SHA-256 ${s.sha256})`).join(", ")
    : d.fileName;
  const lines = [
    `# Model card: ${plan.title}`,
    "",
    `Written on ${c.generatedAt.toISOString().slice(0, 10)} by fedward at ${c.siteLabel}, from this site's own records.`,
    "",
    "## Task",
    `${taskText(plan)}.`,
    `Features: ${featuresText(plan)}.`,
    `Model: ${describeModel(plan)}.`,
    `Plan SHA-256: ${c.planHash}`,
    "",
    "## Data at this site",
    `${total} examples from ${files}: ${d.numTrain} for training, ${d.numHoldout} held out for evaluation ` +
      `(${d.rowsRead} records read, ${d.rowsSkipped} skipped).`,
    `Label balance: ${plan.label.positive} ${d.positives} (${share(d.positives)}), ${plan.label.negative} ${d.negatives} (${share(d.negatives)}).`,
    `The data never left this site; only model updates did, ${isDpSgd(plan) ? "trained by DP-SGD (clipped and noised at every step)" : "clipped and noised"}.`,
    "",
    "## Sites and rounds",
    `Trained by federated averaging across hospitals coordinated at ${c.coordinatorUrl}: at least ${plan.minSites} ` +
      "site(s) per round (the plan's minimum; sites do not learn how many others took part).",
    c.modelVersion === undefined
      ? `Training is not finished: ${evaluated.length} of ${plan.rounds} rounds evaluated here so far.`
      : `The final model is version ${c.modelVersion}, after ${plan.rounds} rounds.`,
    `This site sent its update in ${sent} round(s)${withheld.length ? `; it withheld round(s) ${withheld.join(", ")} (not sent)` : ""}.`,
    "",
    "## Privacy",
    ...privacyLines(c),
    "",
    "## Performance on this site's held-out data",
    first?.accuracyBefore !== undefined
      ? `Starting model: accuracy ${pct(first.accuracyBefore)}, loss ${num(first.lossBefore)}.`
      : "Starting model: not measured.",
    last
      ? `Model version ${last.round}: accuracy ${pct(last.accuracyAfter)}, loss ${num(last.lossAfter)}.`
      : "No global model evaluated yet.",
    "",
    "| Model version | Accuracy | Loss |",
    "|---|---|---|",
    ...evaluated.map((r) => `| ${r.round} | ${pct(r.accuracyAfter)} | ${num(r.lossAfter)} |`),
    "",
    "## Limits",
    `Measured on ${d.numHoldout} held-out examples of one hospital; other hospitals' populations may differ. ` +
      "Check the model on local data before any clinical use; it is not a medical device.",
    "",
  ];
  return lines.join("\n");
}

/** The card's privacy section: mechanism, unit, ε spent against the budget, and how strong that is. */
function privacyLines(c: ModelCardInput): string[] {
  const { plan } = c;
  const p = plan.privacy;
  const unit = unitWord(plan);
  const spent =
    `This site spent ε = ${formatEpsilon(c.spent)} ${perUnitText(plan)} of its budget ε = ${formatEpsilon(p.epsilonBudget)} ` +
    `at δ = ${p.delta} (for everything this site sent; withheld rounds were never released and are not counted).`;
  if (!isDpSgd(plan))
    return [
      `${SITE_LEVEL_LABEL}. Each round's whole update was clipped to length C = ${p.clipNorm} and noised once with ` +
        `the discrete Gaussian mechanism (noise multiplier z = ${p.noiseMultiplier}, σ = z·2C).`,
      spent,
      strengthText(c.spent, plan),
      siteLevelWarning(plan),
    ];
  const d = dpSgdPrivacy(plan);
  const rate =
    d.samplingRate !== undefined
      ? `sampling rate q = ${d.samplingRate}`
      : `expected batch ${d.expectedBatchSize} of this site's ${unit}s`;
  return [
    `DP-SGD: at each of ${d.stepsPerRound} steps per round (${rate}), each ${unit}'s gradient was clipped to ` +
      `length C = ${p.clipNorm} and discrete Gaussian noise of std σ = z·C = ${(p.noiseMultiplier * p.clipNorm).toPrecision(4)} ` +
      `(z = ${p.noiseMultiplier}) was added to their sum. The guarantee is for adding or removing one ${unit}; ` +
      "replacing one can move a step twice as far (2C).",
    spent,
    strengthText(c.spent, plan),
  ];
}
