import type { EnrollmentRow, FedwardDb, ReleaseRow } from "../store/db";
import { fmt, h } from "./dom";

/**
 * The Privacy step's option "Review and approve each upload" (off by default, stored with the enrolment)
 * and the review itself: before each upload the page shows exactly what would leave and waits for
 * "Send" or "Do not send this round". Not sending withholds the release for good (src/client/federation.ts).
 */
export interface UploadReview {
  /** The checkbox of the option, for the Privacy section. */
  option: HTMLElement;
  /** Where a pending review appears (in the Train section, where the clinician is looking). */
  panel: HTMLElement;
  /** FederationRun.approveUpload: resolves at once with true while the option is off. */
  approve(release: ReleaseRow): Promise<boolean>;
  /** Removes a pending review (the run ended). */
  clear(): void;
}

export function uploadReview(db: FedwardDb, enrollment: EnrollmentRow): UploadReview {
  const checkbox = h("input", {
    type: "checkbox",
    id: "review-uploads",
    "data-testid": "review-uploads",
    checked: enrollment.reviewUploads === true,
  }) as HTMLInputElement;
  checkbox.addEventListener("change", async () => {
    enrollment.reviewUploads = checkbox.checked;
    await db.enrollments.update(enrollment.federationId, { reviewUploads: checkbox.checked });
  });
  const option = h(
    "p",
    {},
    checkbox,
    " ",
    h("label", { for: "review-uploads" }, "Review and approve each upload before it is sent"),
    h(
      "span",
      { class: "muted" },
      " (a round you do not send is skipped by this site, is never sent later and spends no privacy budget)",
    ),
  );
  const panel = h("div", { "data-testid": "upload-review-area" });

  const approve = (release: ReleaseRow): Promise<boolean> => {
    if (!enrollment.reviewUploads) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const decide = (send: boolean) => () => {
        panel.replaceChildren();
        resolve(send);
      };
      const heading = h(
        "h3",
        { id: "upload-review-heading", tabindex: "-1" },
        `Review the update for round ${release.round}`,
      );
      const rows: [string, string][] =
        release.mechanism === "dp-sgd"
          ? [
              ["Round", String(release.round)],
              ["Size", `${release.bytes} bytes`],
              [
                "How it was trained",
                `${release.steps} DP-SGD steps; in each, every sampled unit's gradient clipped to C = ${release.clipNorm} ` +
                  `and noise of σ = ${release.sigma.toPrecision(4)} per weight added to their sum (sampling rate q = ${release.samplingRate?.toPrecision(3)})`,
              ],
              ["Length of the change (not clipped again: each step was)", fmt(release.postClipNorm)],
              ["SHA-256 of the exact bytes", release.sha256],
            ]
          : [
              ["Round", String(release.round)],
              ["Size", `${release.bytes} bytes`],
              ["Length of the change before clipping (stays here)", fmt(release.preClipNorm)],
              ["Length after clipping (at most C)", `${fmt(release.postClipNorm)} (C = ${release.clipNorm})`],
              ["Noise σ per weight", release.sigma.toPrecision(4)],
              ["SHA-256 of the exact bytes", release.sha256],
            ];
      panel.replaceChildren(
        h(
          "div",
          {
            class: "review",
            role: "group",
            "aria-labelledby": "upload-review-heading",
            "data-testid": "upload-review",
            "data-round": String(release.round),
            "data-sha256": release.sha256,
          },
          heading,
          h("p", {}, "This is what would leave this computer. Nothing is sent until you choose."),
          h(
            "dl",
            {},
            ...rows.flatMap(([k, v]) => [
              h("dt", {}, k),
              h("dd", { class: k.startsWith("SHA") ? "hash" : "" }, v),
            ]),
          ),
          h(
            "p",
            { class: "review-actions" },
            h("button", { type: "button", "data-testid": "send-upload", onclick: decide(true) }, "Send"),
            " ",
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "data-testid": "withhold-upload",
                onclick: decide(false),
              },
              "Do not send this round",
            ),
          ),
        ),
      );
      heading.focus();
    });
  };
  return {
    option,
    panel,
    approve,
    clear() {
      panel.replaceChildren();
    },
  };
}
