import type { TrainProgress } from "../../workers/train/trainer";
import { isDpSgd, type Plan, siteUpdateTraining } from "../core/plan";
import { fmt, h } from "./dom";

/**
 * Seconds left in the round's local training, from the measured examples/s and the work still to go: the
 * batches of `batchSize` left (site-update plans), or the steps left of about the current step's examples
 * (dp-sgd plans: a Poisson-sampled step's size varies around q·N).
 */
export function etaSeconds(p: TrainProgress, batchSize: number): number {
  if (p.steps !== undefined && p.step !== undefined) {
    const perStep = p.batchExamples ?? batchSize;
    return p.examplesPerSecond > 0 ? ((p.steps - p.step) * perStep) / p.examplesPerSecond : Number.NaN;
  }
  const left = p.epochs * p.batches - ((p.epoch - 1) * p.batches + p.batch);
  return p.examplesPerSecond > 0 ? (left * batchSize) / p.examplesPerSecond : Number.NaN;
}

export function durationText(seconds: number): string {
  if (!Number.isFinite(seconds)) return "unknown";
  if (seconds < 1) return "under a second";
  if (seconds < 90) return `about ${Math.round(seconds)} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

/** The current round's local training as a labelled <progress>, with an ETA from the measured speed. */
export function trainProgress(plan: Plan) {
  const batchSize = isDpSgd(plan) ? 0 : siteUpdateTraining(plan).batchSize;
  const bar = h("progress", {
    id: "round-progress",
    max: "1",
    value: "0",
    "data-testid": "round-progress",
  }) as HTMLProgressElement;
  const label = h("label", { for: "round-progress" }, "This round's local training");
  const line = h("p", { class: "muted", "data-testid": "progress" });
  return {
    element: h("div", {}, label, bar, line),
    show(round: number, rounds: number, p: TrainProgress) {
      const eta = etaSeconds(p, batchSize);
      line.dataset.etaSeconds = String(eta);
      const speed = `loss ${fmt(p.loss)} · ${Math.round(p.examplesPerSecond)} examples/s · ${durationText(eta)} left`;
      if (p.steps !== undefined && p.step !== undefined) {
        bar.value = p.step / p.steps;
        const batch = p.batchExamples !== undefined ? ` (${p.batchExamples} examples sampled)` : "";
        line.textContent = `Round ${round}/${rounds} · DP-SGD step ${p.step}/${p.steps}${batch} · ${speed}`;
        return;
      }
      const done = (p.epoch - 1) * p.batches + p.batch;
      bar.value = done / (p.epochs * p.batches);
      line.textContent = `Round ${round}/${rounds} · epoch ${p.epoch}/${p.epochs} · batch ${p.batch}/${p.batches} · ${speed}`;
    },
  };
}
