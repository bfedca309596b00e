import type { Plan } from "../core/plan";
import { h } from "./dom";

/** The plan in plain words: what is trained, on what, and what leaves this computer. */
export function planView(plan: Plan, hash: string): HTMLElement {
  const { training: t, privacy: p, model: m } = plan;
  return h(
    "dl",
    { "data-testid": "plan" },
    h("dt", {}, "Task"),
    h(
      "dd",
      {},
      `Predict "${plan.label.positive}" vs "${plan.label.negative}" from the column "${plan.label.column}"`,
    ),
    h("dt", {}, "Features"),
    h(
      "dd",
      {},
      `${plan.features.length} numeric columns (${plan.features
        .slice(0, 4)
        .map((f) => f.column)
        .join(", ")}${plan.features.length > 4 ? ", …" : ""})`,
    ),
    h("dt", {}, "Model"),
    h("dd", {}, `Neural network with hidden layers [${m.hidden.join(", ")}] (${m.activation})`),
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
      `Only the change to the model's weights, clipped to length ${p.clipNorm} and blurred with random noise (noise multiplier ${p.noiseMultiplier}, δ = ${p.delta}). No patient record, no row count.`,
    ),
    h("dt", {}, "Plan SHA-256"),
    h("dd", { class: "hash", "data-testid": "plan-hash" }, hash),
  );
}
