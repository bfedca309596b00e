import { proxy, type Remote } from "comlink";
import type { ImportSummary, ImportWorkerApi } from "../../workers/import.worker";
import type { WorkerBridge } from "../client/bridges";
import { getCompleteDataset } from "../store/datasets";
import type { EnrollmentRow, FedwardDb } from "../store/db";
import { h } from "./dom";

export interface DataSectionState {
  datasetId: string | undefined;
  /** While training reads the dataset, a new import must not replace it. */
  locked: boolean;
}

function summaryView(s: ImportSummary, labels: { positive: string; negative: string }): HTMLElement {
  const total = s.positives + s.negatives;
  const share = (n: number) => (total ? `${((100 * n) / total).toFixed(1)}%` : "—");
  return h(
    "div",
    { "data-testid": "import-summary", "data-examples": String(total), "data-holdout": String(s.numHoldout) },
    h(
      "p",
      {},
      `${s.fileName}: ${total} examples imported (${s.numTrain} for training, ${s.numHoldout} held out for evaluation) from ${s.rowsRead} rows; ${s.rowsSkipped} rows skipped.`,
    ),
    imputedLine(s.imputed),
    h(
      "p",
      {},
      `Label balance: ${labels.positive} ${s.positives} (${share(s.positives)}), ${labels.negative} ${s.negatives} (${share(s.negatives)}).`,
    ),
    s.problemCount > 0
      ? h(
          "details",
          { open: true },
          h(
            "summary",
            {},
            `${s.problemCount} problems${s.problemCount > s.problems.length ? ` (first ${s.problems.length} shown)` : ""}`,
          ),
          h(
            "table",
            { "data-testid": "problems" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Line"),
                h("th", { scope: "col" }, "Column"),
                h("th", { scope: "col" }, "Problem"),
              ),
            ),
            h(
              "tbody",
              {},
              ...s.problems.map((p) =>
                h("tr", {}, h("td", {}, p.line), h("td", {}, p.column), h("td", {}, p.message)),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No problems found."),
  );
}

/** Step 2: the site's own export goes into IndexedDB through the import worker, never over the network. */
export async function dataSection(
  db: FedwardDb,
  enrollment: EnrollmentRow,
  importer: WorkerBridge<ImportWorkerApi>,
  state: DataSectionState,
  onChange: () => void,
): Promise<HTMLElement> {
  const out = h("div");
  const progress = h("p", { class: "muted", "data-testid": "import-progress" });
  const labels = enrollment.plan.label;
  const existing = await getCompleteDataset(db, enrollment.federationId);
  if (existing?.planHash === enrollment.planHash) {
    state.datasetId = existing.id;
    out.replaceChildren(summaryView(existing, labels));
  }

  const run = async (file: File) => {
    if (state.locked) {
      progress.textContent = `Leave training before importing ${file.name}: training is reading the current data.`;
      return;
    }
    out.replaceChildren();
    progress.textContent = `Reading ${file.name}…`;
    try {
      const api: Remote<ImportWorkerApi> = importer.api;
      const summary = await importer.guard(
        api.importCsv(
          file,
          enrollment.plan,
          enrollment.federationId,
          enrollment.planHash,
          proxy((p: { rowsRead: number; bytesRead: number; totalBytes: number }) => {
            progress.textContent = `Reading ${file.name}: ${p.rowsRead} rows (${Math.round((100 * p.bytesRead) / Math.max(1, p.totalBytes))}%)`;
          }),
        ),
      );
      progress.textContent = "";
      state.datasetId = summary.id;
      out.replaceChildren(summaryView(summary, labels));
    } catch (e) {
      progress.textContent = "";
      out.replaceChildren(
        h("p", { class: "error", role: "alert", "data-kind": "input" }, (e as Error).message),
        state.datasetId ? h("p", { class: "muted" }, "The data imported before is unchanged.") : "",
      );
    }
    onChange();
  };

  const input = h("input", {
    type: "file",
    id: "file-input",
    accept: ".csv,text/csv",
    "data-testid": "file-input",
  }) as HTMLInputElement;
  input.addEventListener("change", () => {
    const f = input.files?.[0];
    if (f) void run(f);
  });
  const drop = h(
    "div",
    { class: "drop" },
    h("label", { for: "file-input" }, "Choose a CSV export "),
    input,
    h("p", { class: "muted" }, "or drop the file here. It is read on this computer only."),
  );
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = (e as DragEvent).dataTransfer?.files[0];
    if (f) void run(f);
  });
  return h("section", {}, h("h2", {}, "Data"), drop, progress, out);
}

/** Missing values the plan's rules filled in, per feature, so the clinician sees how much was guessed. */
function imputedLine(imputed: Record<string, number> | undefined): HTMLElement | null {
  const entries = Object.entries(imputed ?? {}).filter(([, n]) => n > 0);
  if (entries.length === 0) return null;
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const each = entries.map(([name, n]) => `${name} ${n}`).join(", ");
  return h(
    "p",
    { "data-testid": "imputed", "data-imputed": String(total) },
    `${total} missing value${total === 1 ? "" : "s"} filled in by the plan's rules (${each}).`,
  );
}
