import type { BackendPreference } from "../../../workers/train/backends";
import { importBridge } from "../../client/bridges";
import { INPUT_ERROR_NAMES } from "../../core/errors";
import { dpSgdPrivacy, isDpSgd, type Plan, privacyUnit, siteUpdateTraining } from "../../core/plan";
import { openDb } from "../../store/db";
import { h, pct } from "../dom";
import { siteLevelWarning, strength } from "../privacy-words";
import { simCharts } from "./sim-chart";
import {
  type DemoData,
  deleteSimulationData,
  loadDemo,
  type PartitionOptions,
  prepareData,
} from "./sim-data";
import { runSimulation, type SimRound } from "./sim-run";
import { doneText } from "./sim-text";
import "./simulation.css";

const MAX_ROUNDS = 50;

function numberField(id: string, label: string, attrs: Record<string, string>, hint?: string) {
  const input = h("input", { id, type: "number", required: true, ...attrs }) as HTMLInputElement;
  const row = h(
    "p",
    {},
    h("label", { for: id }, label),
    " ",
    input,
    hint ? h("span", { class: "muted", id: `${id}-hint` }, ` ${hint}`) : null,
  );
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return { input, row };
}

/** A whole number in [min, max] from an input, or a plain-words error naming the field. */
function wholeNumber(input: HTMLInputElement, what: string, min: number, max: number): number {
  const n = Number(input.value);
  if (!(Number.isInteger(n) && n >= min && n <= max)) {
    throw new RangeError(`${what} must be a whole number from ${min} to ${max}; "${input.value}" is not.`);
  }
  return n;
}

/**
 * The workshop demo: a federation of 2 to 8 simulated hospitals in this tab, with no coordinator. See
 * sim-data.ts (the data and its storage), sim-run.ts (workers, aggregation, privacy) and sim-chart.ts.
 */
export async function openSimulation(root: HTMLElement, backend: BackendPreference): Promise<void> {
  const db = openDb();
  // A tab closed mid-run leaves its data behind; nothing of a simulation outlives the next visit.
  await deleteSimulationData(db);
  let demo: DemoData;
  try {
    demo = await loadDemo();
  } catch (e) {
    root.replaceChildren(h("section", {}, h("p", { class: "error", role: "alert" }, (e as Error).message)));
    return;
  }
  const { plan } = demo;
  // Back from ?simulation (pushed by the start page's button): show the start page again.
  window.addEventListener("popstate", () => location.reload(), { once: true });

  const sites = numberField(
    "sim-sites",
    "Simulated hospitals",
    { min: "2", max: "8", value: "3" },
    "(2 to 8)",
  );
  const partition = h(
    "select",
    { id: "sim-partition" },
    h("option", { value: "iid", selected: true }, "IID: shuffled and dealt evenly"),
    h("option", { value: "dirichlet" }, "Non-IID: label skew, Dirichlet(α) (Hsu et al. 2019)"),
  ) as HTMLSelectElement;
  const alpha = numberField(
    "sim-alpha",
    "Dirichlet α",
    { min: "0.01", max: "1000", step: "any", value: "0.5", disabled: "" },
    "(smaller α: each hospital sees mostly one diagnosis)",
  );
  const rounds = numberField("sim-rounds", "Rounds", {
    min: "1",
    max: String(MAX_ROUNDS),
    value: String(plan.rounds),
  });
  const seed = numberField("sim-seed", "Seed of the split", { min: "0", max: "1000000", value: "1" });
  partition.addEventListener("change", () => {
    alpha.input.disabled = partition.value !== "dirichlet";
  });
  const start = h(
    "button",
    { type: "submit", "data-testid": "sim-start" },
    "Start the simulation",
  ) as HTMLButtonElement;
  const stop = h(
    "button",
    { type: "button", class: "secondary", disabled: true },
    "Stop",
  ) as HTMLButtonElement;
  const close = h(
    "button",
    { type: "button", class: "secondary" },
    "Close the simulation",
  ) as HTMLButtonElement;
  const status = h(
    "p",
    { role: "status", "data-testid": "sim-status", "data-state": "idle" },
    "Choose the settings and start.",
  );
  const errors = h("div");
  const split = h("div", { "data-testid": "sim-split" });
  const results = h("div");

  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  let destroyCharts = () => {};

  const run = async (options: PartitionOptions, roundCount: number, signal: AbortSignal) => {
    const importer = importBridge();
    try {
      status.textContent = "Dealing the demo data to the simulated hospitals…";
      const data = await prepareData(demo, options, importer, (text) => {
        status.textContent = text;
      });
      signal.throwIfAborted();
      split.dataset.skew = String(data.skew);
      split.replaceChildren(
        h(
          "p",
          {},
          `${data.sites.length} hospitals, ${data.sites.map((s) => `${s.examples} patients (${pct(s.positives / s.examples)} malignant)`).join(", ")}; `,
          `${data.holdoutExamples} further patients are held out for evaluation. `,
          `Label skew (mean total variation distance from the pooled mix): ${data.skew.toFixed(2)}.`,
        ),
      );
      const charts = simCharts(data.sites.length, plan);
      destroyCharts = charts.destroy;
      results.replaceChildren(charts.element);
      const history: SimRound[] = [];
      let stoppedByBudget = false;
      await runSimulation({
        plan,
        data,
        rounds: roundCount,
        backend,
        signal,
        onEvent: (e) => {
          if (e.type === "status") status.textContent = e.text;
          else if (e.type === "backend") status.dataset.backend = e.backend;
          else if (e.type === "budget") {
            status.dataset.roundsWithinBudget = String(e.roundsWithinBudget);
            errors.replaceChildren(
              h("p", { class: "notice", role: "status", "data-testid": "sim-budget" }, e.text),
            );
          } else if (e.type === "stopped") {
            stoppedByBudget = true;
            errors.append(h("p", { class: "notice", "data-testid": "sim-stopped" }, e.text));
          } else {
            history.push(e.row);
            charts.update(history);
          }
        },
      });
      const last = history.at(-1) as SimRound;
      status.dataset.accuracy = String(last.federated);
      status.dataset.epsilon = String(last.epsilon);
      status.dataset.strength = strength(last.epsilon);
      status.dataset.state = "done";
      status.dataset.stoppedByBudget = String(stoppedByBudget);
      status.textContent = doneText(plan, last, roundCount, stoppedByBudget);
    } finally {
      importer.terminate();
      await deleteSimulationData(db);
    }
  };

  const stopRun = async () => {
    controller?.abort();
    await running?.catch(() => {});
  };

  const form = h(
    "form",
    { class: "sim-form", "aria-label": "Simulation settings" },
    sites.row,
    h("p", {}, h("label", { for: "sim-partition" }, "How the data is split"), " ", partition),
    alpha.row,
    rounds.row,
    seed.row,
    h("p", {}, start, " ", stop, " ", close),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    let options: PartitionOptions;
    let roundCount: number;
    try {
      options = {
        sites: wholeNumber(sites.input, "The number of hospitals", 2, 8),
        partition: partition.value === "dirichlet" ? "dirichlet" : "iid",
        alpha: Number(alpha.input.value),
        seed: wholeNumber(seed.input, "The seed", 0, 1_000_000),
      };
      roundCount = wholeNumber(rounds.input, "The number of rounds", 1, MAX_ROUNDS);
      if (options.partition === "dirichlet" && !(options.alpha >= 0.01 && options.alpha <= 1000)) {
        throw new RangeError(`α must be a number from 0.01 to 1000; "${alpha.input.value}" is not.`);
      }
    } catch (e) {
      errors.replaceChildren(
        h("p", { class: "error", role: "alert", "data-kind": "input" }, (e as Error).message),
      );
      return;
    }
    // Restarting: the previous run stops and its data goes before the new one is dealt.
    await stopRun();
    destroyCharts();
    results.replaceChildren();
    split.replaceChildren();
    const own = new AbortController();
    controller = own;
    start.disabled = true;
    stop.disabled = false;
    status.dataset.state = "running";
    delete status.dataset.accuracy;
    running = run(options, roundCount, own.signal)
      .catch((e: Error) => {
        if (e.name === "AbortError") {
          status.dataset.state = "stopped";
          status.textContent = "The simulation was stopped; its data was deleted from this browser.";
          return;
        }
        status.dataset.state = "error";
        status.textContent = "The simulation stopped.";
        // A split that leaves a hospital too few rows for the plan's sampling is the settings', not a bug.
        const input = (INPUT_ERROR_NAMES as readonly string[]).includes(e.name);
        errors.replaceChildren(
          h(
            "p",
            { class: "error", role: "alert", "data-kind": input ? "input" : "bug" },
            input ? e.message : `Something went wrong inside fedward (please report it): ${e.message}`,
          ),
        );
      })
      .finally(() => {
        if (controller === own) {
          start.disabled = false;
          stop.disabled = true;
        }
      });
  });
  stop.addEventListener("click", () => void stopRun());
  close.addEventListener("click", async () => {
    await stopRun();
    destroyCharts();
    const params = new URLSearchParams(location.search);
    params.delete("simulation");
    location.assign(`${location.pathname}${params.size ? `?${params}` : ""}`);
  });

  root.replaceChildren(
    h(
      "section",
      { "aria-labelledby": "sim-title" },
      h("h2", { id: "sim-title" }, "A simulated federation, in this tab"),
      h(
        "p",
        { class: "notice", "data-testid": "sim-notice" },
        "This is a simulation on a public dataset, not on patient records: the Breast Cancer Wisconsin ",
        "(Diagnostic) data (569 tumours, UCI Machine Learning Repository, CC BY 4.0; Wolberg et al. 1993). ",
        "No coordinator takes part: every simulated hospital trains in its own Web Worker in this tab, and ",
        "this page averages their updates as a coordinator would. Nothing is sent anywhere.",
      ),
      form,
      status,
      errors,
      split,
      results,
      h("h3", {}, "What this shows"),
      ...explanation(plan),
    ),
  );
}

/** "What this shows", for the plan the simulation runs. */
function explanation(plan: Plan): HTMLElement[] {
  const unit = privacyUnit(plan);
  const { delta, clipNorm: C, noiseMultiplier: z } = plan.privacy;
  const training = isDpSgd(plan)
    ? `${dpSgdPrivacy(plan).stepsPerRound} DP-SGD steps on its own patients each round (each step takes a ` +
      `random sample of its ${unit}s, clips each ${unit}'s gradient to length C = ${C} and adds noise of ` +
      `σ = z·C = ${(z * C).toPrecision(3)} to their sum)`
    : `${siteUpdateTraining(plan).epochs} epochs on its own patients each round, then clips its whole update and adds noise once`;
  return [
    h(
      "p",
      {},
      `Every hospital trains the shared model for ${training}, and sends only its weight update (the same code `,
      "as a real site); the average of the updates is the next shared model (“Federated”). For comparison, ",
      "each hospital also trains a model of its own on its own patients only, with the same steps and noise ",
      "(“Hospital k alone”, at the same ε as its federated updates: a real hospital would do one or the other), ",
      `and one model trains with the same mechanism on all ${unit}s in one place (“All data pooled”). Its ε `,
      `is per ${unit} of the pooled data, but pooling means the data leave the hospitals, which real hospitals `,
      "may not do. Every model is scored on the same held-out patients, whom no model trained on.",
    ),
    h(
      "p",
      {},
      "Federated training should come close to the pooled model and beat the hospitals alone, most of all when ",
      "the split is skewed (a hospital that sees mostly one diagnosis learns little about the other). ",
      `ε bounds how much a hospital's updates could reveal about any one ${unit} of its data (smaller is more `,
      `private, at δ = ${delta}); it grows with every step, over all rounds, and each hospital counts its own. `,
      "Averaging the hospitals' updates also averages their noise, which helps the federated model.",
    ),
    ...(isDpSgd(plan) ? [] : [h("p", { class: "notice" }, siteLevelWarning(plan))]),
  ];
}
