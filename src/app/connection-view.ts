import type { AuditEntry } from "../client/coordinator";
import { h } from "./dom";

const CHECK_TIMEOUT_MS = 10_000;

/**
 * Says in plain words when the coordinator cannot be reached. The page itself opens from the service
 * worker's copy and everything shown comes from this browser's IndexedDB, so only training and the model
 * download need the coordinator. Checks once on load, when the browser comes back online, and on request.
 */
export function connectionNotice(coordinatorUrl: string, audit: (e: AuditEntry) => void): HTMLElement {
  const element = h("div", { "data-testid": "connection", "data-state": "checking" });
  const check = async () => {
    const url = new URL("/api/health", coordinatorUrl).toString();
    let status = 0;
    try {
      const res = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
      status = res.status;
    } catch {
      // No answer: network down, coordinator stopped, or the timeout; the notice says the same for all.
    }
    audit({ at: Date.now(), method: "GET", url, status, bytesSent: 0, bytesReceived: 0 });
    element.dataset.state = status === 200 ? "online" : "offline";
    element.replaceChildren(
      ...(status === 200
        ? []
        : [
            h(
              "p",
              { class: "notice", role: "status", "data-testid": "offline" },
              `Offline: the coordinator at ${coordinatorUrl} cannot be reached. `,
              "Your enrolment, data, rounds and privacy ledger below are kept in this browser. ",
              "Training and the model download need the coordinator: check the network, then ",
              h("button", { class: "secondary", onclick: () => void check() }, "Check again"),
            ),
          ]),
    );
  };
  addEventListener("online", () => void check());
  void check();
  return element;
}
