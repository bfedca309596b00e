import type { BackendPreference } from "../../workers/train/backends";
import { importBridge, trainBridge } from "../client/bridges";
import { CoordinatorClient, CoordinatorError } from "../client/coordinator";
import { runFederation } from "../client/federation";
import { INPUT_ERROR_NAMES } from "../core/errors";
import { isDpSgd, type Plan, parsePlan, planHash, siteUpdateTraining } from "../core/plan";
import { dpSgdSchedule } from "../core/privacy/dp-sgd";
import { getCompleteDataset } from "../store/datasets";
import type { DatasetRow, RoundRow } from "../store/db";
import { openDb } from "../store/db";
import { ledgerOf } from "../store/ledger";
import { setJoined } from "../store/round-state";
import { adminView } from "./admin-view";
import { backendAdvice } from "./backend-advice";
import { lazyChart } from "./charts";
import { connectionNotice } from "./connection-view";
import { type DataSectionState, dataSection } from "./data-view";
import { fmt, h, pct } from "./dom";
import { modelView, saveFile } from "./model-view";
import { networkLog } from "./network-log";
import { planApproval, planApproved } from "./plan-approval";
import { planView } from "./plan-view";
import { privacyView } from "./privacy-view";
import { modelHistory } from "./round-history";
import { type PathState, stepHeading, stepIndicator } from "./steps";
import { registerServiceWorker } from "./sw-register";
import { trainProgress } from "./train-progress";
import { uploadReview } from "./upload-review";

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

/** Examples one round reads, for the time estimate: epochs × rows, or a dp-sgd round's steps × q·N. */
function examplesPerRound(plan: Plan, d: DatasetRow | undefined): number {
  if (!d) return 0;
  if (!isDpSgd(plan)) return d.numTrain * siteUpdateTraining(plan).epochs;
  const units = d.trainUnits ?? d.numTrain;
  try {
    const { expectedBatch, steps } = dpSgdSchedule(plan, units);
    // A unit may hold several examples: scale the expected batch of units to examples.
    return (steps * expectedBatch * d.numTrain) / units;
  } catch {
    return 0; // the plan does not fit this site; the plan view says why
  }
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
  const advice = h("p", { "data-testid": "backend-advice" });
  const progress = trainProgress(enrollment.plan);
  const lossChart = lazyChart(
    {
      title: "Loss per round",
      yLabel: "Loss",
      versions: enrollment.plan.rounds,
      format: (v) => v.toFixed(2),
      series: [
        { label: "Held-out loss of the global model", stroke: "#0b62a4", value: (p) => p.loss },
        { label: "Local training loss", stroke: "#b26a00", dash: [6, 4], value: (p) => p.trainLoss },
      ],
    },
    "loss-chart",
    "Loss of each global model on this site's held-out data and of local training (numbers in the rounds table)",
  );
  const steps = stepIndicator();
  const path: PathState = { planApproved: planApproved(enrollment), dataImported: false, training: "idle" };
  const review = uploadReview(db, enrollment);
  const model = modelView(db, enrollment);
  const joinWhy = h("p", { id: "join-why", class: "muted", "data-testid": "join-why" });
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
  const pauseButton = h(
    "button",
    { class: "secondary", disabled: true, "data-testid": "pause", "aria-pressed": "false" },
    "Pause after this round",
  ) as HTMLButtonElement;
  let pauseRequested = false;
  const errors = h("div");

  const data: DataSectionState = { datasetId: undefined, locked: false };
  let running = false;
  /** Join is possible once the plan is approved and data imported; the line under it says what is missing. */
  const refresh = () => {
    path.planApproved = planApproved(enrollment);
    path.dataImported = data.datasetId !== undefined;
    joinButton.disabled = running || !path.planApproved || !path.dataImported;
    joinWhy.textContent = running
      ? ""
      : !path.planApproved
        ? "Join training is off until you approve the plan (step 1)."
        : !path.dataImported
          ? "Join training is off until this site's data is imported (step 2)."
          : "";
    steps.update(path);
  };
  joinButton.setAttribute("aria-describedby", "join-why");
  const dataEl = await dataSection(db, enrollment, importer, data, () => {
    planSection.setUnits(data.units);
    refresh();
  });
  // ε of a dp-sgd plan depends on this site's N when the plan fixes an expected batch: shown once imported.
  const planSection = planView(enrollment.plan, enrollment.planHash, data.units);

  const dpSgd = isDpSgd(enrollment.plan);
  const roundData = new Map<number, RoundRow>();
  const showRound = (row: RoundRow) => {
    roundData.set(row.round, row);
    lossChart.update(modelHistory([...roundData.values()]));
    model.showRounds([...roundData.values()]);
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
      h("td", {}, fmt(row.lossAfter)),
      h("td", {}, row.uploadedBytes ?? "—"),
      ...(dpSgd
        ? [h("td", {}, fmt(row.postClipNorm))]
        : [h("td", {}, fmt(row.preClipNorm)), h("td", {}, fmt(row.postClipNorm))]),
      h("td", {}, fmt(row.sigma, 4)),
      h("td", { class: "hash", title: row.uploadSha256 ?? "" }, row.uploadSha256?.slice(0, 16) ?? "—"),
      h("td", {}, row.uploadedAt ? "sent" : row.notSent ? `not sent: ${row.notSent}` : "—"),
    );
  };
  for (const row of await db.rounds.where("federationId").equals(enrollment.federationId).sortBy("round")) {
    showRound(row);
  }
  const showFinished = (modelVersion: number) => {
    path.training = "done";
    model.finished(downloadButton(client, enrollment.federationId, errors), modelVersion, (e) =>
      errors.replaceChildren(errorBox(e)),
    );
  };
  // A finished federation (the last version evaluated here) stays finished after a reload.
  if (roundData.get(enrollment.plan.rounds)?.accuracyAfter !== undefined)
    showFinished(enrollment.plan.rounds);
  const privacy = privacyView(enrollment.plan, review.option);
  const ledger = await ledgerOf(db, enrollment.federationId, enrollment.plan.privacy.delta);
  privacy.show(ledger.spent, ledger.releases);

  let controller: AbortController | undefined;
  joinButton.addEventListener("click", async () => {
    if (!data.datasetId) return;
    // Approval is read again from IndexedDB: nothing trains on a plan this site has not approved.
    const stored = await db.enrollments.get(enrollment.federationId);
    if (!stored || !planApproved(stored) || stored.planHash !== enrollment.planHash) return refresh();
    controller = new AbortController();
    running = true;
    pauseRequested = false;
    data.locked = true;
    leaveButton.disabled = false;
    pauseButton.disabled = false;
    pauseButton.setAttribute("aria-pressed", "false");
    path.training = "running";
    refresh();
    errors.replaceChildren();
    status.dataset.state = "training";
    try {
      // Remembered so that a reload or a reopened tab continues by itself (until Leave or the end).
      await setJoined(db, enrollment.federationId, true);
      await runFederation({
        enrollment,
        datasetId: data.datasetId,
        client,
        trainer,
        db,
        backend: select.value as BackendPreference,
        signal: controller.signal,
        approveUpload: (release) => {
          status.textContent = `Round ${release.round}: review the update below, then send it or not.`;
          return review.approve(release);
        },
        onEvent: (e) => {
          if (e.type === "status") status.textContent = e.text;
          else if (e.type === "backend") {
            backendLine.textContent = `Backend: ${e.choice.backend} — ${e.choice.reason}`;
            backendLine.dataset.backend = e.choice.backend;
            backendLine.dataset.reason = e.choice.reason;
            backendLine.dataset.fallbackAdapter = String(e.choice.adapter?.fallback ?? false);
            void getCompleteDataset(db, enrollment.federationId).then((d) => {
              advice.textContent = backendAdvice(e.choice, examplesPerRound(enrollment.plan, d));
            });
          } else if (e.type === "progress") progress.show(e.round, e.rounds, e.progress);
          else if (e.type === "round") {
            showRound(e.row);
            // "Pause after this round": once this round's update is settled (sent or withheld), stop.
            if (pauseRequested && (e.row.uploadedAt !== undefined || e.row.notSent !== undefined)) {
              controller?.abort(new DOMException("Paused after this round.", "AbortError"));
            }
          } else if (e.type === "privacy") privacy.show(e.spent, e.releases);
          else if (e.type === "stopped") {
            status.textContent = e.text;
            status.dataset.state = "stopped";
            privacy.stopped(e.text);
          } else if (e.type === "done") {
            status.textContent = `Training finished: the final model (after ${e.modelVersion} rounds) scores ${pct(e.accuracy)} on this site's held-out data.`;
            status.dataset.state = "done";
            status.dataset.accuracy = String(e.accuracy);
            showFinished(e.modelVersion);
          }
        },
      });
      // Done, or stopped by the privacy budget: nothing to continue on the next visit.
      await setJoined(db, enrollment.federationId, false);
    } catch (e) {
      joinButton.disabled = false;
      if ((e as Error).name === "AbortError") {
        void setJoined(db, enrollment.federationId, false);
        status.dataset.state = pauseRequested ? "paused" : "idle";
        status.textContent = pauseRequested
          ? "Paused after this round's update. Nothing more is sent; join again to continue with the next round."
          : "You left training. Nothing more is sent; join again to continue with the current round.";
      } else {
        status.dataset.state = "error";
        status.textContent = "Training stopped.";
        errors.replaceChildren(errorBox(e));
      }
    } finally {
      // The worker holds the model and maybe a GPU device: free them whenever a run ends.
      trainer.terminate();
      review.clear();
      running = false;
      data.locked = false;
      leaveButton.disabled = true;
      pauseButton.disabled = true;
      if (path.training === "running") path.training = "idle";
      refresh();
    }
  });
  pauseButton.addEventListener("click", () => {
    pauseRequested = true;
    pauseButton.disabled = true;
    pauseButton.setAttribute("aria-pressed", "true");
    status.textContent = `${status.textContent ?? ""} Training pauses once this round's update is settled.`;
  });
  leaveButton.addEventListener("click", () => {
    controller?.abort();
    trainer.terminate();
  });

  refresh();
  root.replaceChildren(
    steps.element,
    h(
      "section",
      { id: "step-join", "aria-labelledby": "step-join-heading" },
      stepHeading("Join", `: ${enrollment.plan.title}`),
      h(
        "p",
        { class: "muted" },
        `This computer is enrolled as ${enrollment.siteLabel} at ${enrollment.coordinatorUrl}.`,
      ),
      connectionNotice(enrollment.coordinatorUrl, log.record),
      planSection.element,
      planApproval(db, enrollment, refresh),
    ),
    dataEl,
    h(
      "section",
      { id: "step-train", "aria-labelledby": "step-train-heading" },
      stepHeading("Train"),
      h(
        "p",
        {},
        h("label", { for: "backend-select" }, "Backend: "),
        select,
        " ",
        joinButton,
        " ",
        pauseButton,
        " ",
        leaveButton,
      ),
      joinWhy,
      status,
      backendLine,
      advice,
      progress.element,
      review.panel,
      errors,
      lossChart.element,
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
              "Held-out loss after",
              "Bytes sent",
              ...(dpSgd
                ? ["Norm of the update (not clipped: each step was)", "Noise σ per step"]
                : ["Norm before clip", "Norm after clip", "Noise σ"]),
              "SHA-256 of upload",
              "Upload",
            ].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        roundsBody,
      ),
    ),
    privacy.element,
    model.element,
    log.element,
  );
  // This site had joined training when the page was last closed or reloaded: continue without a click (the
  // round resumes from its checkpoint, or the site rejoins the current one; Leave stops it).
  if (enrollment.joinedAt !== undefined && !joinButton.disabled) {
    joinButton.click();
    status.textContent = "Continuing the training this site joined before the page was closed…";
  }
}

function downloadButton(client: CoordinatorClient, federationId: string, errors: HTMLElement): HTMLElement {
  const save = saveFile;
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
