import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { isDpSgd, type Plan, privacyUnit } from "../../core/plan";
import { formatEpsilon } from "../../core/privacy/budget";
import { h, pct } from "../dom";
import { perUnitText, SITE_LEVEL_LABEL, strength } from "../privacy-words";
import type { SimRound } from "./sim-run";
import { sitesEpsilonText } from "./sim-text";

/** Two uPlot charts side by side (accuracy per curve, ε per round) and a table of the same numbers. */
export interface SimCharts {
  element: HTMLElement;
  update(history: readonly SimRound[]): void;
  destroy(): void;
}

// Federated and pooled stand out; the sites share a muted palette (dashed), up to 8 of them.
const FEDERATED = "#0b62a4";
const POOLED = "#2e7d32";
const SITES = ["#b26a00", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400", "#5d6d7e", "#a93226"];
const HEIGHT = 260;
const GAP = 24;

/** Side by side when two charts of 260 px fit in the page's column, else one under the other. */
function chartWidth(available: number): number {
  return available >= 2 * 260 + GAP
    ? Math.min(460, Math.floor((available - GAP) / 2))
    : Math.min(460, available);
}

function axes(yLabel: string, yValue: (v: number) => string): uPlot.Axis[] {
  return [
    { label: "Round", values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : "")) },
    { label: yLabel, size: 60, values: (_u, ticks) => ticks.map(yValue) },
  ];
}

export function simCharts(sites: number, plan: Plan): SimCharts {
  const { delta } = plan.privacy;
  const unit = privacyUnit(plan);
  const per = perUnitText(plan);
  const dpSgd = isDpSgd(plan);
  // The canvases say nothing to a screen reader: the table below carries the same numbers.
  const accuracyTarget = h("div", {
    class: "sim-chart",
    "data-testid": "accuracy-chart",
    "aria-hidden": "true",
  });
  const epsilonTarget = h("div", {
    class: "sim-chart",
    "data-testid": "epsilon-chart",
    "aria-hidden": "true",
  });
  const siteNames = Array.from({ length: sites }, (_, k) => `Hospital ${k + 1} alone (same ε)`);
  const body = h("tbody");
  const table = h(
    "table",
    { "data-testid": "sim-table" },
    h(
      "caption",
      {},
      `The charts' numbers: held-out accuracy of each model after each round, and ε spent ${per}. `,
      "Each hospital alone is trained with the same mechanism on its own data, so at the same ε as its ",
      `federated updates; the pooled model's ε is per ${unit} of the pooled data, held in one place.`,
    ),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...[
          "Round",
          "Federated",
          "All data pooled",
          ...siteNames,
          `ε ${per}, each hospital (δ = ${delta})`,
          `ε ${per}, pooled model`,
        ].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    body,
  );
  let accuracyPlot: uPlot | undefined;
  let epsilonPlot: uPlot | undefined;

  const update = (history: readonly SimRound[]) => {
    const rounds = history.map((r) => r.round);
    const accuracyData: uPlot.AlignedData = [
      rounds,
      history.map((r) => r.federated),
      history.map((r) => r.pooled),
      ...siteNames.map((_, k) => history.map((r) => r.alone[k] ?? null)),
    ];
    const epsilonData: uPlot.AlignedData = [rounds, history.map((r) => r.epsilon)];
    if (accuracyPlot && epsilonPlot) {
      accuracyPlot.setData(accuracyData);
      epsilonPlot.setData(epsilonData);
    } else {
      const width = chartWidth(element.clientWidth || 640);
      accuracyPlot = new uPlot(
        {
          title: "Held-out accuracy per round",
          width,
          height: HEIGHT,
          legend: { live: false },
          scales: { x: { time: false }, y: { range: [0, 1] } },
          axes: axes("Accuracy", (v) => `${Math.round(v * 100)}%`),
          series: [
            { label: "Round" },
            { label: "Federated", stroke: FEDERATED, width: 3, value: (_u, v) => pct(v ?? undefined) },
            { label: "All data pooled", stroke: POOLED, width: 2, value: (_u, v) => pct(v ?? undefined) },
            ...siteNames.map((label, k) => ({
              label,
              stroke: SITES[k % SITES.length] as string,
              width: 1.5,
              dash: [6, 4],
              value: (_u: uPlot, v: number | null) => pct(v ?? undefined),
            })),
          ],
        },
        accuracyData,
        accuracyTarget,
      );
      epsilonPlot = new uPlot(
        {
          title: "Privacy spent (ε) per round",
          width,
          height: HEIGHT,
          legend: { live: false },
          scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
          axes: axes("ε", (v) => (Math.abs(v) >= 10 ? String(Math.round(v)) : formatEpsilon(v))),
          series: [
            { label: "Round" },
            {
              label: `ε ${per} of each hospital's releases (the largest, if they differ)`,
              stroke: "#6a1b9a",
              width: 2,
              value: (_u, v) => (v === null ? "—" : formatEpsilon(v)),
            },
          ],
        },
        epsilonData,
        epsilonTarget,
      );
    }
    body.replaceChildren(
      ...history.map((r) =>
        h(
          "tr",
          {
            "data-round": String(r.round),
            "data-federated": String(r.federated),
            "data-pooled": String(r.pooled),
            "data-alone": r.alone.join(","),
            "data-epsilon": String(r.epsilon),
            "data-epsilon-sites": r.epsilonBySite.join(","),
            "data-epsilon-pooled": String(r.epsilonPooled),
            "data-strength": strength(r.epsilon),
          },
          h("th", { scope: "row" }, r.round === 0 ? "0 (start)" : r.round),
          h("td", {}, pct(r.federated)),
          h("td", {}, pct(r.pooled)),
          ...r.alone.map((a) => h("td", {}, pct(a))),
          h("td", {}, sitesEpsilonText(r.epsilonBySite)),
          h("td", {}, formatEpsilon(r.epsilonPooled)),
        ),
      ),
    );
  };

  const element = h(
    "div",
    {},
    h(
      "div",
      { class: "sim-charts" },
      h(
        "figure",
        {},
        accuracyTarget,
        h(
          "figcaption",
          {},
          "Accuracy on the same held-out patients, for every model (numbers in the table below)",
        ),
      ),
      h(
        "figure",
        {},
        epsilonTarget,
        h(
          "figcaption",
          {},
          dpSgd
            ? `ε per ${unit} spent by each hospital: Rényi DP of the Poisson-subsampled Gaussian at integer orders, over all steps of all rounds (numbers below)`
            : `ε spent by each hospital, by the exact Gaussian DP accountant; ${SITE_LEVEL_LABEL.toLowerCase()} (numbers below)`,
        ),
      ),
    ),
    table,
  );
  return {
    element,
    update,
    destroy() {
      accuracyPlot?.destroy();
      epsilonPlot?.destroy();
    },
  };
}
