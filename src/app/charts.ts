import { h } from "./dom";
import type { ChartSpec } from "./round-charts";
import type { VersionPoint } from "./round-history";

export interface LazyChart {
  element: HTMLElement;
  update(points: readonly VersionPoint[]): void;
}

/**
 * A uPlot chart of the rounds, in a figure whose caption names the table that carries the same numbers
 * (the canvas says nothing to a screen reader). uPlot is imported on first use, off the first bundle.
 */
export function lazyChart(spec: ChartSpec, testId: string, caption: string): LazyChart {
  const target = h("div", { class: "round-chart", "data-testid": testId, "aria-hidden": "true" });
  const element = h("figure", {}, target, h("figcaption", {}, caption));
  let latest: readonly VersionPoint[] = [];
  let chart: Promise<{ update(p: readonly VersionPoint[]): void } | undefined> | undefined;
  return {
    element,
    update(points) {
      latest = points;
      if (points.length === 0) return;
      chart ??= import("./round-charts").then(
        (m) => m.drawChart(target, spec, Math.min(560, element.clientWidth || 560)),
        () => undefined, // offline before the chart's file was cached: the table still has the numbers
      );
      void chart.then((c) => {
        c?.update(latest);
        target.dataset.points = String(latest.length);
      });
    },
  };
}
