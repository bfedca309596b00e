import { isDpSgd, type Plan } from "../core/plan";
import { formatEpsilon } from "../core/privacy/budget";
import type { ReleaseRow } from "../store/db";
import { countsAgainstBudget } from "../store/ledger";
import { h } from "./dom";
import { perUnitText, SITE_LEVEL_LABEL, strength, strengthText, WEAK_EPSILON } from "./privacy-words";
import { stepHeading } from "./steps";

/**
 * The site's privacy books on the page: epsilon spent by its releases against the plan's budget, and per
 * release exactly what left (the ledger in IndexedDB is the source; this only shows it).
 */
export interface PrivacyView {
  element: HTMLElement;
  show(spent: number, releases: readonly ReleaseRow[]): void;
  stopped(text: string): void;
}

/**
 * A <meter>'s colour comes from low/high/optimum: with optimum 0, a value up to `low` is green, above `high`
 * red. Both at min(10, budget): green only while ε is at most 10 (a budget under 10 is all green), and never
 * green above 10, where the guarantee is weak.
 */
export function meterBounds(budget: number): { low: number; high: number; optimum: number } {
  const edge = Math.min(WEAK_EPSILON, budget);
  return { low: edge, high: edge, optimum: 0 };
}

/** The privacy line above the meter, in words (the unit, the mechanism, how strong, what it counts). */
export function spentText(plan: Plan, spent: number, counted: number, withheld: number): string {
  const { epsilonBudget: budget, delta } = plan.privacy;
  const label = isDpSgd(plan) ? "" : `${SITE_LEVEL_LABEL}. `;
  return (
    `${label}Privacy spent: ε = ${formatEpsilon(spent)} ${perUnitText(plan)} of the budget ` +
    `ε = ${formatEpsilon(budget)} (δ = ${delta}), by ${counted} release${counted === 1 ? "" : "s"} from this site` +
    (withheld
      ? `; ${withheld} withheld round${withheld === 1 ? "" : "s"} never left and count${withheld === 1 ? "s" : ""} nothing.`
      : ".") +
    (counted > 0 ? ` ${strengthText(spent, plan)}` : "")
  );
}

const COLUMNS = [
  "Round",
  "ε after",
  "Steps",
  "Sampling rate q",
  "Noise multiplier z",
  "Clip C",
  "Noise σ",
  "Grid",
  "Bytes",
  "SHA-256 of upload",
  "Counted in",
  "Coordinator",
];

/** `option` is the upload review's setting (src/app/upload-review.ts), shown above the ledger. */
export function privacyView(plan: Plan, option?: HTMLElement): PrivacyView {
  const { epsilonBudget: budget } = plan.privacy;
  const bounds = meterBounds(budget);
  const meter = h("meter", {
    min: "0",
    max: String(budget),
    low: String(bounds.low),
    high: String(bounds.high),
    optimum: String(bounds.optimum),
    value: "0",
    "aria-label": "Privacy budget spent",
  }) as HTMLMeterElement;
  const line = h("p", { "data-testid": "privacy-spent" });
  const notice = h("div");
  const body = h("tbody");
  const dpSgd = isDpSgd(plan);
  const table = h(
    "table",
    { "data-testid": "ledger" },
    h(
      "caption",
      {},
      "Privacy ledger: every update this site released, written here before it was sent. ",
      dpSgd
        ? "Each round ran the steps shown; in each, every sampled unit's gradient was clipped to C and noise of std σ = z·C was added on the grid."
        : `${SITE_LEVEL_LABEL}: each round's whole update was clipped to C and noised once with std σ = z·2C on the grid.`,
    ),
    h("thead", {}, h("tr", {}, ...COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
  const show = (spent: number, releases: readonly ReleaseRow[]) => {
    const counted = releases.filter(countsAgainstBudget).length;
    const withheld = releases.length - counted;
    meter.value = Math.min(spent, budget);
    line.dataset.spent = String(spent);
    line.dataset.budget = String(budget);
    line.dataset.releases = String(counted);
    line.dataset.withheld = String(withheld);
    line.dataset.strength = strength(spent);
    line.dataset.mechanism = dpSgd ? "dp-sgd" : "site-update";
    line.textContent = spentText(plan, spent, counted, withheld);
    body.replaceChildren(...releases.map(ledgerRow));
  };
  show(0, []);
  return {
    element: h(
      "section",
      { id: "step-privacy", "aria-labelledby": "step-privacy-heading" },
      stepHeading("Privacy"),
      line,
      meter,
      notice,
      option,
      table,
    ),
    show,
    stopped(text) {
      notice.replaceChildren(
        h("p", { class: "notice", role: "status", "data-testid": "privacy-stop" }, text),
      );
    },
  };
}

/** Where the coordinator's receipt says the release went: which model version, or not (yet). */
function countedText(r: ReleaseRow): string {
  const receipt = r.receipt;
  if (r.withheldAt !== undefined || receipt?.status === "refused" || r.refused !== undefined)
    return "not counted";
  if (receipt?.status === "counted") return `model version ${receipt.modelVersion}`;
  if (receipt?.status === "accepted") return "when the round closes";
  return "—";
}

function ledgerRow(r: ReleaseRow): HTMLElement {
  const dpSgd = r.mechanism === "dp-sgd";
  return h(
    "tr",
    {
      "data-round": String(r.round),
      "data-epsilon-after": String(r.epsilonAfter),
      "data-sha256": r.sha256,
      "data-mechanism": dpSgd ? "dp-sgd" : "site-update",
      "data-sigma": String(r.sigma),
      "data-grid": String(r.grid),
      ...(dpSgd
        ? {
            "data-steps": String(r.steps),
            "data-sampling-rate": String(r.samplingRate),
            "data-units": String(r.units),
          }
        : {}),
      "data-status": r.withheldAt ? "withheld" : r.sentAt ? "accepted" : r.refused ? "refused" : "pending",
      ...(r.receipt ? { "data-receipt": r.receipt.status } : {}),
      ...(r.receipt?.modelVersion != null ? { "data-model-version": String(r.receipt.modelVersion) } : {}),
    },
    h("td", {}, r.round),
    h("td", {}, r.withheldAt ? "not counted" : formatEpsilon(r.epsilonAfter)),
    h("td", {}, dpSgd ? String(r.steps) : "1 (whole update)"),
    h("td", {}, dpSgd && r.samplingRate !== undefined ? r.samplingRate.toPrecision(3) : "—"),
    h("td", {}, r.noiseMultiplier),
    h("td", {}, r.clipNorm),
    h("td", {}, `${r.sigma.toPrecision(4)}${dpSgd ? " per step" : ""}`),
    h("td", {}, `2^${Math.log2(r.grid)}`),
    h("td", {}, r.bytes),
    h("td", { class: "hash", title: r.sha256 }, r.sha256.slice(0, 16)),
    h("td", {}, countedText(r)),
    h(
      "td",
      {},
      r.withheldAt
        ? "withheld: not sent (your choice)"
        : r.sentAt
          ? "accepted"
          : r.refused
            ? `refused: ${r.refused}`
            : "not acknowledged yet",
    ),
  );
}
