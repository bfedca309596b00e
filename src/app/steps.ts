import { h } from "./dom";

/** The clinician's one path, in order; each step is a section of the page with this id. */
export const STEPS = [
  { id: "step-join", name: "Join" },
  { id: "step-data", name: "Data" },
  { id: "step-train", name: "Train" },
  { id: "step-privacy", name: "Privacy" },
  { id: "step-model", name: "Model" },
] as const;

export type StepState = "done" | "current" | "to do";

/** What the page knows; every step's state is derived from it, never set by hand. */
export interface PathState {
  planApproved: boolean;
  dataImported: boolean;
  training: "idle" | "running" | "done";
}

/**
 * Join is done once the plan is approved, Data once a dataset is imported, Train and Privacy once the
 * federation finished (the ledger is then final); the current step is the first one not done, and Model
 * is current once training is done.
 */
export function stepStates(s: PathState): StepState[] {
  const finished = s.training === "done";
  const done = [s.planApproved, s.dataImported, finished, finished, false];
  const current = done.indexOf(false);
  return done.map((d, i) => (d ? "done" : i === current ? "current" : "to do"));
}

export interface StepIndicator {
  element: HTMLElement;
  update(s: PathState): void;
}

/** An ordered list of links to the sections; aria-current="step" marks the current one. */
export function stepIndicator(): StepIndicator {
  const items = STEPS.map((step, i) => {
    const state = h("span", { class: "step-state" });
    const li = h(
      "li",
      { "data-step": step.name },
      h("a", { href: `#${step.id}` }, `${i + 1}. ${step.name}`),
      state,
    );
    return { li, state };
  });
  const element = h(
    "nav",
    { "aria-label": "Steps", class: "steps" },
    h("ol", { "data-testid": "steps" }, ...items.map((i) => i.li)),
  );
  return {
    element,
    update(s) {
      stepStates(s).forEach((state, i) => {
        const item = items[i];
        if (!item) return;
        item.li.dataset.state = state;
        item.state.textContent = state;
        if (state === "current") item.li.setAttribute("aria-current", "step");
        else item.li.removeAttribute("aria-current");
      });
    },
  };
}

/** A step's heading, with the id the indicator links to ("3. Train"). */
export function stepHeading(name: (typeof STEPS)[number]["name"], suffix = ""): HTMLElement {
  const i = STEPS.findIndex((s) => s.name === name);
  return h("h2", { id: `${STEPS[i]?.id}-heading` }, `${i + 1}. ${name}${suffix}`);
}
