import type { TrainProgress } from "../../workers/train/trainer";
import { fmt, h } from "./dom";

/** Seconds left in the round's local training, from the measured examples/s and the batches still to go. */
export function etaSeconds(p: TrainProgress, batchSize: number): number {
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
export function trainProgress(batchSize: number) {
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
      const done = (p.epoch - 1) * p.batches + p.batch;
      bar.value = done / (p.epochs * p.batches);
      const eta = etaSeconds(p, batchSize);
      line.dataset.etaSeconds = String(eta);
      line.textContent =
        `Round ${round}/${rounds} · epoch ${p.epoch}/${p.epochs} · batch ${p.batch}/${p.batches} · ` +
        `loss ${fmt(p.loss)} · ${Math.round(p.examplesPerSecond)} examples/s · ${durationText(eta)} left`;
    },
  };
}
