import { getCompleteDataset } from "../store/datasets";
import type { EnrollmentRow, FedwardDb, RoundRow } from "../store/db";
import { ledgerOf } from "../store/ledger";
import { lazyChart } from "./charts";
import { h, pct } from "./dom";
import { modelCardText } from "./model-card";
import { modelHistory } from "./round-history";
import { stepHeading } from "./steps";

/** Saves bytes as a file through a temporary link (revoked later: at once can cancel the download). */
export function saveFile(bytes: Uint8Array | string, name: string, type: string): void {
  const href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  h("a", { href, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/**
 * Step 5: the global model on this site's held-out data across versions (a chart and the same numbers as a
 * table), the model download once training is done, and the model card.
 */
export function modelView(db: FedwardDb, enrollment: EnrollmentRow) {
  const chart = lazyChart(
    {
      title: "Held-out accuracy of each global model",
      yLabel: "Accuracy",
      range: [0, 1],
      versions: enrollment.plan.rounds,
      format: (v) => `${Math.round(v * 100)}%`,
      series: [
        { label: "Accuracy on this site's held-out data", stroke: "#0b62a4", value: (p) => p.accuracy },
      ],
    },
    "accuracy-chart",
    "Accuracy of each global model on this site's held-out data (numbers in the table below)",
  );
  const body = h("tbody");
  const table = h(
    "table",
    { "data-testid": "model-metrics" },
    h("caption", {}, "Each global model measured on this site's held-out data"),
    h(
      "thead",
      {},
      h("tr", {}, ...["Model version", "Accuracy", "Loss"].map((t) => h("th", { scope: "col" }, t))),
    ),
    body,
  );
  const downloads = h("div", { class: "downloads" });
  const card = h("pre", { class: "model-card", "data-testid": "model-card", hidden: true });
  const element = h(
    "section",
    { id: "step-model", "aria-labelledby": "step-model-heading" },
    stepHeading("Model"),
    chart.element,
    table,
    downloads,
    card,
  );

  const cardText = async (modelVersion: number | undefined) => {
    const dataset = await getCompleteDataset(db, enrollment.federationId);
    if (!dataset) throw new Error("Import this site's data first: the model card describes it.");
    const rounds = await db.rounds.where("federationId").equals(enrollment.federationId).toArray();
    const { releases, spent } = await ledgerOf(db, enrollment.federationId, enrollment.plan.privacy.delta);
    return modelCardText({
      ...enrollment,
      dataset,
      rounds,
      releases,
      spent,
      modelVersion,
      generatedAt: new Date(),
    });
  };

  return {
    element,
    showRounds(rows: readonly RoundRow[]) {
      const points = modelHistory(rows).filter((p) => p.accuracy !== undefined);
      chart.update(points);
      body.replaceChildren(
        ...points.map((p) =>
          h(
            "tr",
            { "data-version": String(p.version) },
            h("th", { scope: "row" }, p.version === 0 ? "0 (start)" : p.version),
            h("td", {}, pct(p.accuracy)),
            h("td", {}, p.loss?.toFixed(3) ?? "—"),
          ),
        ),
      );
    },
    /** Training is done: the final model's download (passed in) and the model card. */
    finished(download: HTMLElement, modelVersion: number, onError: (e: unknown) => void) {
      const cardButton = h(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "model-card-download",
          onclick: async () => {
            try {
              const text = await cardText(modelVersion);
              card.textContent = text;
              card.hidden = false;
              saveFile(text, "model-card.md", "text/markdown");
            } catch (e) {
              onError(e);
            }
          },
        },
        "Download the model card (.md)",
      );
      downloads.replaceChildren(download, " ", cardButton);
    },
  };
}
