import type { EnrollmentRow, FedwardDb } from "../store/db";
import { h } from "./dom";

/** Whether this site approved exactly the plan it is enrolled with (a new plan needs approval again). */
export function planApproved(e: EnrollmentRow): boolean {
  return e.approvedPlanHash !== undefined && e.approvedPlanHash === e.planHash;
}

/**
 * "I approve this plan", under the plan in plain words and its SHA-256. The approval is stored in IndexedDB
 * with the hash it approves; nothing trains before it.
 */
export function planApproval(db: FedwardDb, enrollment: EnrollmentRow, onApproved: () => void): HTMLElement {
  const line = h("p", { "data-testid": "plan-approval" });
  const button = h(
    "button",
    { "data-testid": "approve-plan", type: "button" },
    "I approve this plan",
  ) as HTMLButtonElement;
  const show = () => {
    const ok = planApproved(enrollment);
    line.dataset.approved = String(ok);
    button.hidden = ok;
    line.textContent = ok
      ? `You approved this plan (SHA-256 ${enrollment.planHash.slice(0, 16)}…) on ${new Date(enrollment.approvedAt ?? 0).toLocaleString()}. Training may start.`
      : enrollment.approvedPlanHash
        ? "The plan changed since you approved it (its SHA-256 differs). Read it again; nothing trains until you approve this plan."
        : "Read the plan above. Nothing trains and nothing is sent until you approve it.";
  };
  button.addEventListener("click", async () => {
    const patch = { approvedPlanHash: enrollment.planHash, approvedAt: Date.now() };
    await db.enrollments.update(enrollment.federationId, patch);
    Object.assign(enrollment, patch);
    show();
    onApproved();
  });
  show();
  return h("div", { class: "approval" }, line, button);
}
