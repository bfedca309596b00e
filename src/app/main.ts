import type { BackendPreference } from "../../workers/train/backends";
import { importBridge, trainBridge } from "../client/bridges";
import { CoordinatorClient, CoordinatorError } from "../client/coordinator";
import { runFederation } from "../client/federation";
import { INPUT_ERROR_NAMES } from "../core/errors";
import { parsePlan, planHash } from "../core/plan";
import type { RoundRow } from "../store/db";
import { openDb } from "../store/db";
import { ledgerOf } from "../store/ledger";
import { adminView } from "./admin-view";
import { connectionNotice } from "./connection-view";
import { type DataSectionState, dataSection } from "./data-view";
import { fmt, h, pct } from "./dom";
import { networkLog } from "./network-log";
import { planView } from "./plan-view";
import { privacyView } from "./privacy-view";
import { registerServiceWorker } from "./sw-register";

const db = openDb();
const root = document.getElementById("app") as HTMLElement;
const params = new URLSearchParams(location.search);
// The worker's list cannot be imported as a value here (page code takes only types from workers/).
const BACKENDS: BackendPreference[] = ["auto", "webgpu", "webgl", "wasm", "cpu"];
const backendParam = params.get("backend") ?? "auto";
const log = networkLog();

function errorBox(e: unknown): HTMLElement {
  const err = e as Error;
  const kind =
    e instanceof CoordinatorError
      ? e.kind
      : err.name === "AbortError"
        ? "abort"
        : (INPUT_ERROR_NAMES as readonly string[]).includes(err.name)
          ? "input"
          : "bug";
  const lead =
    kind === "retry"
      ? "Try again in a moment. "
      : kind === "input"
        ? ""
        : kind === "abort"
          ? ""
          : "Something went wrong inside fedward (please report it): ";
  return h("p", { class: "error", role: "alert", "data-kind": kind }, lead + err.message);
}

async function enrollFromInvite(code: string): Promise<string> {
  const coordinatorUrl = params.get("coordinator") ?? location.origin;
  const res = await new CoordinatorClient(coordinatorUrl, undefined, log.record).enroll(code);
  const plan = parsePlan(res.plan, "plan sent by the coordinator");
  const hash = await planHash(plan);
  if (hash !== res.planHash) {
    throw new Error(
      `The plan's SHA-256 (${hash}) does not match what the coordinator says (${res.planHash}); do not join.`,
    );
  }
  await db.enrollments.put({
    federationId: res.federationId,
    coordinatorUrl,
    siteId: res.siteId,
    siteLabel: res.siteLabel,
    token: res.token,
    plan,
    planHash: hash,
    enrolledAt: Date.now(),
  });
  return res.federationId;
}

async function boot(): Promise<void> {
  if (params.has("simulation")) return openSimulationPage();
  const invite = params.get("invite");
  if (invite) {
    try {
      await enrollFromInvite(invite.trim());
    } catch (e) {
      const already = e instanceof CoordinatorError && e.status === 409;
      if (!already || (await db.enrollments.count()) === 0) {
        root.replaceChildren(h("section", {}, h("h2", {}, "Joining the federation failed"), errorBox(e)));
        return;
      }
    }
    // The invite code is single-use; keep it out of the address bar and history.
    params.delete("invite");
    history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}`);
  }
  const enrollment = (await db.enrollments.toArray())[0];
  if (!enrollment) {
    root.replaceChildren(
      h(
        "section",
        {},
        h("h2", {}, "Not enrolled yet"),
        h("p", {}, "Open the invite link your federation's coordinator sent you."),
        h(
          "p",
          {},
          "Or see how it works first, with no coordinator and no patient data: ",
          h(
            "button",
            {
              "data-testid": "try-simulation",
              onclick: () =>
                void openSimulationPage().catch((e) => root.replaceChildren(h("section", {}, errorBox(e)))),
            },
            "Try a simulated federation",
          ),
        ),
      ),
    );
    return;
  }
  const client = new CoordinatorClient(enrollment.coordinatorUrl, enrollment.token, log.record);
  const trainer = trainBridge();
  const importer = importBridge();

  const status = h(
    "p",
    { "data-testid": "status", "data-state": "idle" },
    "Import your data, then join training.",
  );
  const backendLine = h(
    "p",
    { "data-testid": "backend", class: "muted" },
    "Backend: chosen when training starts.",
  );
  const bar = h("progress", { max: "1", value: "0", "aria-label": "Round progress" }) as HTMLProgressElement;
  const progressLine = h("p", { class: "muted", "data-testid": "progress" });
  const roundsBody = h("tbody");
  const roundRows = new Map<number, HTMLElement>();
  const select = h(
    "select",
    { id: "backend-select" },
    ...BACKENDS.map((b) => h("option", { value: b, selected: b === backendParam }, b)),
  ) as HTMLSelectElement;
  const joinButton = h(
    "button",
    { "data-testid": "join", disabled: true },
    "Join training",
  ) as HTMLButtonElement;
  const leaveButton = h("button", { class: "secondary", disabled: true }, "Leave") as HTMLButtonElement;
  const errors = h("div");
  const finalArea = h("div");

  const data: DataSectionState = { datasetId: undefined, locked: false };
  let running = false;
  const dataEl = await dataSection(db, enrollment, importer, data, () => {
    joinButton.disabled = running || data.datasetId === undefined;
  });
  joinButton.disabled = data.datasetId === undefined;

  const showRound = (row: RoundRow) => {
    const tr =
      roundRows.get(row.round) ??
      (() => {
        const el = h("tr", { "data-round": String(row.round) });
        roundRows.set(row.round, el);
        roundsBody.append(el);
        return el;
      })();
    if (row.accuracyBefore !== undefined) tr.dataset.accuracyBefore = String(row.accuracyBefore);
    if (row.accuracyAfter !== undefined) tr.dataset.accuracyAfter = String(row.accuracyAfter);
    if (row.lossBefore !== undefined) tr.dataset.lossBefore = String(row.lossBefore);
    if (row.lossAfter !== undefined) tr.dataset.lossAfter = String(row.lossAfter);
    if (row.examplesPerSecond !== undefined) tr.dataset.examplesPerSecond = String(row.examplesPerSecond);
    tr.replaceChildren(
      h("td", {}, row.round),
      h("td", {}, pct(row.accuracyBefore)),
      h("td", {}, pct(row.accuracyAfter)),
      h("td", {}, row.uploadedBytes ?? "—"),
      h("td", {}, fmt(row.preClipNorm)),
      h("td", {}, fmt(row.postClipNorm)),
      h("td", {}, fmt(row.sigma, 4)),
      h("td", { class: "hash", title: row.uploadSha256 ?? "" }, row.uploadSha256?.slice(0, 16) ?? "—"),
      h("td", {}, row.uploadedAt ? "sent" : row.notSent ? `not sent: ${row.notSent}` : "—"),
    );
  };
  for (const row of await db.rounds.where("federationId").equals(enrollment.federationId).sortBy("round")) {
    showRound(row);
  }
  const privacy = privacyView(enrollment.plan);
  const ledger = await ledgerOf(db, enrollment.federationId, enrollment.plan.privacy.delta);
  privacy.show(ledger.spent, ledger.releases);

  let controller: AbortController | undefined;
  joinButton.addEventListener("click", async () => {
    if (!data.datasetId) return;
    controller = new AbortController();
    running = true;
    data.locked = true;
    joinButton.disabled = true;
    leaveButton.disabled = false;
    errors.replaceChildren();
    status.dataset.state = "training";
    try {
      await runFederation({
        enrollment,
        datasetId: data.datasetId,
        client,
        trainer,
        db,
        backend: select.value as BackendPreference,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === "status") status.textContent = e.text;
          else if (e.type === "backend") {
            backendLine.textContent = `Backend: ${e.choice.backend} — ${e.choice.reason}`;
            backendLine.dataset.backend = e.choice.backend;
            backendLine.dataset.reason = e.choice.reason;
            backendLine.dataset.fallbackAdapter = String(e.choice.adapter?.fallback ?? false);
          } else if (e.type === "progress") {
            const p = e.progress;
            bar.value = ((p.epoch - 1) * p.batches + p.batch) / (p.epochs * p.batches);
            progressLine.textContent = `Round ${e.round}/${e.rounds} · epoch ${p.epoch}/${p.epochs} · batch ${p.batch}/${p.batches} · loss ${fmt(p.loss)} · ${Math.round(p.examplesPerSecond)} examples/s`;
          } else if (e.type === "round") showRound(e.row);
          else if (e.type === "privacy") privacy.show(e.spent, e.releases);
          else if (e.type === "stopped") {
            status.textContent = e.text;
            status.dataset.state = "stopped";
            privacy.stopped(e.text);
          } else if (e.type === "done") {
            status.textContent = `Training finished: the final model (after ${e.modelVersion} rounds) scores ${pct(e.accuracy)} on this site's held-out data.`;
            status.dataset.state = "done";
            status.dataset.accuracy = String(e.accuracy);
            finalArea.replaceChildren(downloadButton(client, enrollment.federationId, errors));
          }
        },
      });
    } catch (e) {
      joinButton.disabled = false;
      if ((e as Error).name === "AbortError") {
        status.dataset.state = "idle";
        status.textContent =
          "You left training. Nothing more is sent; join again to continue with the current round.";
      } else {
        status.dataset.state = "error";
        status.textContent = "Training stopped.";
        errors.replaceChildren(errorBox(e));
      }
    } finally {
      // The worker holds the model and maybe a GPU device: free them whenever a run ends.
      trainer.terminate();
      running = false;
      data.locked = false;
      leaveButton.disabled = true;
    }
  });
  leaveButton.addEventListener("click", () => {
    controller?.abort();
    trainer.terminate();
  });

  root.replaceChildren(
    h(
      "section",
      {},
      h("h2", {}, `Federation: ${enrollment.plan.title}`),
      h(
        "p",
        { class: "muted" },
        `This computer is enrolled as ${enrollment.siteLabel} at ${enrollment.coordinatorUrl}.`,
      ),
      connectionNotice(enrollment.coordinatorUrl, log.record),
      planView(enrollment.plan, enrollment.planHash),
    ),
    dataEl,
    h(
      "section",
      {},
      h("h2", {}, "Training"),
      h(
        "p",
        {},
        h("label", { for: "backend-select" }, "Backend: "),
        select,
        " ",
        joinButton,
        " ",
        leaveButton,
      ),
      status,
      backendLine,
      bar,
      progressLine,
      errors,
      h(
        "table",
        { "data-testid": "rounds" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...[
              "Round",
              "Accuracy before",
              "Accuracy after",
              "Bytes sent",
              "Norm before clip",
              "Norm after clip",
              "Noise σ",
              "SHA-256 of upload",
              "Upload",
            ].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        roundsBody,
      ),
      finalArea,
    ),
    privacy.element,
    log.element,
  );
}

function downloadButton(client: CoordinatorClient, federationId: string, errors: HTMLElement): HTMLElement {
  const save = (bytes: Uint8Array, name: string, type: string) => {
    const href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
    h("a", { href, download: name }).click();
    // Revoking at once can cancel the download in some browsers.
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  };
  return h(
    "button",
    {
      "data-testid": "download",
      onclick: async () => {
        try {
          errors.replaceChildren();
          save(await client.finalModelJson(federationId), "model.json", "application/json");
          save(await client.finalWeights(federationId), "weights.bin", "application/octet-stream");
        } catch (e) {
          errors.replaceChildren(errorBox(e));
        }
      },
    },
    "Download the final model (TF.js)",
  );
}

registerServiceWorker();

/** The workshop demo (src/app/simulation), loaded on demand so its chart library stays out of this bundle. */
async function openSimulationPage(): Promise<void> {
  if (!params.has("simulation")) {
    params.set("simulation", "");
    history.pushState(null, "", `${location.pathname}?${params}`);
  }
  const { openSimulation } = await import("./simulation/sim-view");
  const backend = BACKENDS.find((b) => b === backendParam) ?? "auto";
  await openSimulation(root, backend);
}

// The coordinator serves this same page at /admin for its admin.
if (location.pathname === "/admin") adminView(root);
else boot().catch((e) => root.replaceChildren(h("section", {}, errorBox(e))));
