import type { BackendPreference } from "../../../workers/train/backends";
import { importBridge } from "../../client/bridges";
import { formatEpsilon } from "../../core/privacy/budget";
import { openDb } from "../../store/db";
import { h, pct } from "../dom";
import { simCharts } from "./sim-chart";
import {
  type DemoData,
  deleteSimulationData,
  loadDemo,
  type PartitionOptions,
  prepareData,
} from "./sim-data";
import { runSimulation, type SimRound } from "./sim-run";
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
      const charts = simCharts(data.sites.length, plan.privacy.delta);
      destroyCharts = charts.destroy;
      results.replaceChildren(charts.element);
      const history: SimRound[] = [];
      await runSimulation({
        plan,
        data,
        rounds: roundCount,
        backend,
        signal,
        onEvent: (e) => {
          if (e.type === "status") status.textContent = e.text;
          else if (e.type === "backend") status.dataset.backend = e.backend;
          else if (e.type === "stopped") errors.replaceChildren(h("p", { class: "notice" }, e.text));
          else {
            history.push(e.row);
            charts.update(history);
          }
        },
      });
      const last = history.at(-1) as SimRound;
      status.dataset.accuracy = String(last.federated);
      status.dataset.state = "done";
      status.textContent =
        `Done after ${last.round} round${last.round === 1 ? "" : "s"}: the federated model scores ${pct(last.federated)} on the held-out ` +
        `patients, the pooled model ${pct(last.pooled)}; each hospital spent ε = ${formatEpsilon(last.epsilon)}.`;
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
        errors.replaceChildren(
          h(
            "p",
            { class: "error", role: "alert", "data-kind": "bug" },
            `Something went wrong inside fedward (please report it): ${e.message}`,
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
      h(
        "p",
        {},
        `Every hospital trains the shared model for ${plan.training.epochs} epochs on its own patients each round `,
        "and sends only its weight update, clipped and with random noise added (the same code as a real site); ",
        "the average of the updates is the next shared model (“Federated”). For comparison, each hospital also ",
        "trains a model of its own on its own patients only, for the same epochs (“Hospital k alone”), and one ",
        "model trains on all patients in one place (“All data pooled”), which real hospitals may not do. ",
        "Every model is scored on the same held-out patients, whom no model trained on.",
      ),
      h(
        "p",
        {},
        "Federated training should come close to the pooled model and beat the hospitals alone, most of all when ",
        "the split is skewed (a hospital that sees mostly one diagnosis learns little about the other). ",
        `ε measures how much the updates could reveal about any one patient (smaller is more private, at δ = ${plan.privacy.delta}); `,
        "it grows with every update a hospital sends. The baselines' updates go through the same clipping and ",
        "noise (the same worker code), so the curves differ in where the data is; averaging the hospitals' ",
        "updates also averages their noise, which helps the federated model a little.",
      ),
    ),
  );
}
