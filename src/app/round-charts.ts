import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { VersionPoint } from "./round-history";

/** Loaded on demand (src/app/charts.ts) so uPlot stays out of the first bundle. */
export interface ChartSeries {
  label: string;
  stroke: string;
  dash?: number[];
  value: (p: VersionPoint) => number | undefined;
}

export interface ChartSpec {
  title: string;
  yLabel: string;
  /** Fixed y range (accuracy: [0, 1]); absent: from the data, starting at 0. */
  range?: [number, number];
  format: (v: number) => string;
  /** The last model version (the plan's rounds): the x axis spans the whole federation from the start. */
  versions: number;
  series: ChartSeries[];
}

export function drawChart(target: HTMLElement, spec: ChartSpec, width: number) {
  const data = (points: readonly VersionPoint[]): uPlot.AlignedData => [
    points.map((p) => p.version),
    ...spec.series.map((s) => points.map((p) => s.value(p) ?? null)),
  ];
  const plot = new uPlot(
    {
      title: spec.title,
      width,
      height: 220,
      legend: { live: false },
      scales: {
        x: { time: false, range: [0, spec.versions] },
        y: { range: spec.range ?? ((_u, _min, max) => [0, Math.max(max, 1e-3) * 1.1]) },
      },
      axes: [
        {
          label: "Model version (round)",
          values: (_u, t) => t.map((v) => (Number.isInteger(v) ? String(v) : "")),
        },
        { label: spec.yLabel, size: 60, values: (_u, t) => t.map(spec.format) },
      ],
      series: [
        { label: "Version" },
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          dash: s.dash,
          points: { show: true },
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : spec.format(v)),
        })),
      ],
    },
    data([]),
    target,
  );
  return {
    update: (points: readonly VersionPoint[]) => plot.setData(data(points)),
    destroy: () => plot.destroy(),
  };
}
