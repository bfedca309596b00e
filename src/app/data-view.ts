import { proxy, type Remote } from "comlink";
import type { ImportProgress, ImportSummary, ImportWorkerApi } from "../../workers/import.worker";
import type { WorkerBridge } from "../client/bridges";
import { getCompleteDataset } from "../store/datasets";
import type { EnrollmentRow, FedwardDb } from "../store/db";
import { h } from "./dom";
import { stepHeading } from "./steps";

export interface DataSectionState {
  datasetId: string | undefined;
  /** The dataset's training units (patients, rows or images): DP-SGD's N, for the plan view's ε. */
  units?: number | undefined;
  /** While training reads the dataset, a new import must not replace it. */
  locked: boolean;
}

type DataKind = "csv" | "cohort" | "image";

function summaryView(
  s: ImportSummary,
  labels: { positive: string; negative: string },
  kind: DataKind,
): HTMLElement {
  const total = s.positives + s.negatives;
  const share = (n: number) => (total ? `${((100 * n) / total).toFixed(1)}%` : "—");
  return h(
    "div",
    { "data-testid": "import-summary", "data-examples": String(total), "data-holdout": String(s.numHoldout) },
    h(
      "p",
      {},
      `${s.fileName}: ${total} examples imported (${s.numTrain} for training, ${s.numHoldout} held out for evaluation) ` +
        (kind === "cohort"
          ? `from ${s.rowsRead} patients; ${s.rowsSkipped} patients left out (outside the cohort or incomplete).`
          : kind === "image"
            ? `from ${s.rowsRead} files; ${s.rowsSkipped} files left out (not images, unlabelled or unreadable; see below).`
            : `from ${s.rowsRead} rows; ${s.rowsSkipped} rows skipped.`),
    ),
    imputedLine(s.imputed),
    manifestLine(s),
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
  const storage = h("div");
  const showStorage = (ask: boolean) =>
    storageLine(ask).then(
      (line) => storage.replaceChildren(line),
      () => storage.replaceChildren(),
    );
  void showStorage(false);
  const progress = h("p", { class: "muted", "data-testid": "import-progress" });
  const labels = enrollment.plan.label;
  const cohort = enrollment.plan.cohort !== undefined;
  const image = enrollment.plan.image;
  const kind: DataKind = image ? "image" : cohort ? "cohort" : "csv";
  const many = kind !== "csv";
  const existing = await getCompleteDataset(db, enrollment.federationId);
  if (existing?.planHash === enrollment.planHash) {
    state.datasetId = existing.id;
    state.units = existing.trainUnits ?? existing.numTrain;
    out.replaceChildren(summaryView(existing, labels, kind));
  }

  const cancelButton = h(
    "button",
    { class: "secondary", "data-testid": "cancel-import", hidden: true },
    "Cancel import",
  ) as HTMLButtonElement;
  const run = async (files: File[], paths: string[] = files.map(relativePath)) => {
    const what = files.length === 1 ? (files[0] as File).name : `${files.length} files`;
    if (state.locked) {
      progress.textContent = `Leave training before importing ${what}: training is reading the current data.`;
      return;
    }
    out.replaceChildren();
    progress.textContent = `Reading ${what}…`;
    // Cancelling ends the import worker; the dataset imported before stays (a new one replaces it only once
    // complete), and what the killed import left in IndexedDB is swept by the next one.
    let cancel = () => {};
    const cancelled = new Promise<never>((_, reject) => {
      cancel = () => {
        importer.terminate();
        reject(new DOMException(`The import of ${what} was cancelled.`, "AbortError"));
      };
    });
    cancelled.catch(() => {});
    cancelButton.onclick = () => cancel();
    cancelButton.hidden = false;
    // Asked on the clinician's action, once data is about to be kept here.
    void showStorage(true);
    try {
      const api: Remote<ImportWorkerApi> = importer.api;
      const onProgress = proxy((p: ImportProgress) => {
        const percent = Math.round((100 * p.bytesRead) / Math.max(1, p.totalBytes));
        const which = p.files && p.files > 1 ? ` file ${p.file} of ${p.files}` : ` ${what}`;
        progress.textContent =
          p.phase === "hashing"
            ? `Checking${which} (SHA-256): ${percent}%`
            : p.phase === "deriving"
              ? `Building one example per patient: ${p.rowsRead} patients`
              : kind === "image"
                ? `Reading image ${p.file ?? 0} of ${p.files ?? files.length}: ${p.rowsRead} examples (${percent}%)`
                : `Reading${which}: ${p.rowsRead} ${cohort ? "patients" : "rows"} (${percent}%)`;
      });
      const { plan, federationId, planHash } = enrollment;
      const summary = await Promise.race([
        importer.guard(
          kind === "image"
            ? api.importImages(
                files,
                paths,
                labelsInput?.files?.[0],
                plan,
                federationId,
                planHash,
                onProgress,
              )
            : cohort
              ? api.importCohort(files, plan, federationId, planHash, onProgress)
              : api.importCsv(files[0] as File, plan, federationId, planHash, onProgress),
        ),
        cancelled,
      ]);
      progress.textContent = "";
      state.datasetId = summary.id;
      state.units = summary.trainUnits ?? summary.numTrain;
      out.replaceChildren(summaryView(summary, labels, kind));
      void showStorage(false);
    } catch (e) {
      progress.textContent = "";
      const aborted = (e as Error).name === "AbortError";
      out.replaceChildren(
        h(
          "p",
          aborted
            ? { role: "status", "data-testid": "import-cancelled" }
            : { class: "error", role: "alert", "data-kind": "input" },
          (e as Error).message,
        ),
        state.datasetId ? h("p", { class: "muted" }, "The data imported before is unchanged:") : "",
      );
      const before = await getCompleteDataset(db, enrollment.federationId);
      if (before?.id === state.datasetId && before) out.append(summaryView(before, labels, kind));
    } finally {
      cancelButton.hidden = true;
    }
    onChange();
  };

  // A cohort plan reads an export of many files (FHIR NDJSON or Bundles, or OMOP tables), an image plan a
  // folder of DICOM, PNG or JPEG files (DICOM files often have no extension, so no filter): files or a folder.
  const accept =
    kind === "image" ? "" : cohort ? ".ndjson,.json,.gz,.csv,application/fhir+json" : ".csv,text/csv";
  const input = h("input", {
    type: "file",
    id: "file-input",
    ...(accept ? { accept } : {}),
    multiple: many,
    "data-testid": "file-input",
  }) as HTMLInputElement;
  const folder = h("input", {
    type: "file",
    id: "folder-input",
    webkitdirectory: true,
    "data-testid": "folder-input",
  }) as HTMLInputElement;
  const labelsInput =
    image && image.labels.key !== "folder"
      ? (h("input", {
          type: "file",
          id: "labels-input",
          accept: ".csv,.tsv,text/csv",
          "data-testid": "labels-input",
        }) as HTMLInputElement)
      : undefined;
  for (const el of [input, folder]) {
    el.addEventListener("change", () => {
      const files = [...(el.files ?? [])];
      if (files.length > 0) void run(many ? files : files.slice(0, 1));
    });
  }
  const what = kind === "image" ? "the image folder " : cohort ? "the export's files " : "a CSV export ";
  const drop = h(
    "div",
    { class: "drop" },
    h("label", { for: kind === "image" ? "folder-input" : "file-input" }, `Choose ${what}`),
    kind === "image" ? folder : input,
    many
      ? h(
          "span",
          {},
          kind === "image" ? " or its files " : " or its folder ",
          kind === "image" ? input : folder,
        )
      : null,
    labelsInput
      ? h(
          "p",
          {},
          h("label", { for: "labels-input" }, "Labels CSV (optional when the folder holds one CSV) "),
          labelsInput,
        )
      : null,
    h(
      "p",
      { class: "muted" },
      kind === "image"
        ? `DICOM files (with or without extension, any transfer syntax), PNG or JPEG. ${imageLabelHelp(enrollment)} Or drop the folder here. Files are read on this computer only.`
        : cohort
          ? "FHIR Bulk Data (.ndjson, .ndjson.gz), FHIR Bundles (.json) or OMOP CDM tables (.csv). Or drop the files here. They are read on this computer only."
          : "or drop the file here. It is read on this computer only.",
    ),
  );
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const transfer = (e as DragEvent).dataTransfer;
    if (!transfer) return;
    void droppedFiles(transfer).then(({ files, paths }) => {
      if (files.length > 0) void run(many ? files : files.slice(0, 1), paths);
    });
  });
  return h(
    "section",
    { id: "step-data", "aria-labelledby": "step-data-heading" },
    stepHeading("Data"),
    drop,
    progress,
    cancelButton,
    out,
    storage,
  );
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

/** The manifest: which file (size and SHA-256, to match against the export) and how long the import took. */
function manifestLine(s: ImportSummary): HTMLElement | null {
  const files = s.sources ?? [];
  const first = files[0];
  if (!first) return null;
  const seconds = s.importMs === undefined ? "" : `; imported in ${(s.importMs / 1000).toFixed(1)} s`;
  if (files.length === 1) {
    return h(
      "p",
      {
        class: "muted",
        "data-testid": "manifest",
        "data-sha256": first.sha256,
        "data-size": String(first.size),
      },
      `File: ${first.name}, ${megabytes(first.size)}, SHA-256 `,
      h("span", { class: "hash" }, first.sha256),
      seconds,
    );
  }
  const size = files.reduce((sum, f) => sum + f.size, 0);
  return h(
    "details",
    {
      class: "muted",
      "data-testid": "manifest",
      "data-files": String(files.length),
      "data-size": String(size),
    },
    h("summary", {}, `${files.length} files, ${megabytes(size)} in all${seconds}; their SHA-256`),
    h(
      "ul",
      {},
      ...files.map((f) =>
        h(
          "li",
          {
            "data-records": String(f.records ?? ""),
            "data-problems": String(f.problems ?? ""),
            "data-sha256": f.sha256,
          },
          `${f.name}, ${megabytes(f.size)}`,
          f.records === undefined ? "" : `, ${f.records} records read, ${f.problems ?? 0} problems`,
          ": ",
          h("span", { class: "hash" }, f.sha256),
        ),
      ),
    ),
  );
}

function megabytes(bytes: number): string {
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Asks the browser to keep this site's data (navigator.storage.persist(): without it, IndexedDB may be
 * cleared under storage pressure) and shows how much is used of what the browser allows.
 */
export async function storageLine(ask: boolean): Promise<HTMLElement> {
  const storage = navigator.storage;
  if (!storage?.estimate)
    return h("p", { class: "muted" }, "This browser does not report its storage quota.");
  const persisted = ask && storage.persist ? await storage.persist() : await storage.persisted?.();
  const { usage = 0, quota = 0 } = await storage.estimate();
  return h(
    "p",
    { class: "muted", "data-testid": "storage", "data-persisted": String(Boolean(persisted)) },
    `Storage on this computer: ${megabytes(usage)} used of ${megabytes(quota)} this browser allows; ` +
      (persisted
        ? "kept until you clear it (persistent)."
        : "the browser may clear it when the disk is short of space (it did not grant persistent storage)."),
  );
}

/** Where an image plan's labels come from, in plain words. */
function imageLabelHelp(enrollment: EnrollmentRow): string {
  const { plan } = enrollment;
  const key = plan.image?.labels.key;
  const { positive, negative } = plan.label;
  if (key === "folder")
    return `Each image's label is the name of its folder: "${positive}" or "${negative}".`;
  const by = key === "path" ? "each file's path in the folder" : `the DICOM attribute ${key}`;
  return `Labels come from a CSV keyed by ${by}, with "${positive}" or "${negative}" in its label column.`;
}

/** A File's path inside the chosen folder, or its name when it was chosen on its own. */
function relativePath(file: File): string {
  return file.webkitRelativePath || file.name;
}

/**
 * Dropped files and folders, folders walked (a dropped folder is one entry in dataTransfer.files, with no
 * contents), each with its path inside what was dropped.
 */
async function droppedFiles(transfer: DataTransfer): Promise<{ files: File[]; paths: string[] }> {
  const entries = [...transfer.items]
    .map((item) => item.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => e !== null && e !== undefined);
  if (entries.length === 0) {
    const files = [...transfer.files];
    return { files, paths: files.map((f) => f.name) };
  }
  const files: File[] = [];
  const paths: string[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) =>
        (entry as FileSystemFileEntry).file(resolve, reject),
      );
      files.push(file);
      paths.push(path);
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries gives the entries in batches (100 in Chromium) until it gives an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
        reader.readEntries(resolve, reject),
      );
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, path);
    }
  };
  for (const entry of entries) await walk(entry, "");
  return { files, paths };
}
