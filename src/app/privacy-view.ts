import type { Plan } from "../core/plan";
import { formatEpsilon } from "../core/privacy/budget";
import type { ReleaseRow } from "../store/db";
import { countsAgainstBudget } from "../store/ledger";
import { h } from "./dom";
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

/** `option` is the upload review's setting (src/app/upload-review.ts), shown above the ledger. */
export function privacyView(plan: Plan, option?: HTMLElement): PrivacyView {
  const { epsilonBudget: budget, delta } = plan.privacy;
  const meter = h("meter", {
    min: "0",
    max: String(budget),
    value: "0",
    "aria-label": "Privacy budget spent",
  }) as HTMLMeterElement;
  const line = h("p", { "data-testid": "privacy-spent" });
  const notice = h("div");
  const body = h("tbody");
  const table = h(
    "table",
    { "data-testid": "ledger" },
    h("caption", {}, "Privacy ledger: every update this site released, written here before it was sent"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["Round", "ε after", "Noise σ", "Grid", "Clip C", "Bytes", "SHA-256 of upload", "Coordinator"].map(
          (t) => h("th", { scope: "col" }, t),
        ),
      ),
    ),
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
    line.textContent =
      `Privacy spent: ε = ${formatEpsilon(spent)} of the budget ε = ${formatEpsilon(budget)} (δ = ${delta}), ` +
      `by ${counted} release${counted === 1 ? "" : "s"} from this site` +
      (withheld
        ? `; ${withheld} withheld round${withheld === 1 ? "" : "s"} never left and count${withheld === 1 ? "s" : ""} nothing.`
        : ".");
    body.replaceChildren(
      ...releases.map((r) =>
        h(
          "tr",
          {
            "data-round": String(r.round),
            "data-epsilon-after": String(r.epsilonAfter),
            "data-sha256": r.sha256,
            "data-status": r.withheldAt
              ? "withheld"
              : r.sentAt
                ? "accepted"
                : r.refused
                  ? "refused"
                  : "pending",
          },
          h("td", {}, r.round),
          h("td", {}, r.withheldAt ? "not counted" : formatEpsilon(r.epsilonAfter)),
          h("td", {}, r.sigma.toPrecision(4)),
          h("td", {}, `2^${Math.log2(r.grid)}`),
          h("td", {}, r.clipNorm),
          h("td", {}, r.bytes),
          h("td", { class: "hash", title: r.sha256 }, r.sha256.slice(0, 16)),
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
        ),
      ),
    );
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
