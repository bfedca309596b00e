import type { AuditEntry } from "../client/coordinator";
import { h } from "./dom";

/**
 * Every request this page makes to the coordinator, as the clinician can audit it: when, what, to where,
 * how many bytes left and came back. Patient data is never among them; only model updates leave.
 */
export function networkLog() {
  const body = h("tbody");
  const summary = h("summary", {}, "Network log: 0 requests");
  let count = 0;
  let sent = 0;
  const element = h(
    "section",
    {},
    h("h2", {}, "What this page sent"),
    h(
      "details",
      { "data-testid": "network-log" },
      summary,
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["Time", "Request", "Status", "Bytes sent", "Bytes received"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        body,
      ),
    ),
  );
  // Polling repeats the same request for hours: repeats fold into one row with a count.
  let last: { key: string; row: HTMLElement; times: number } | undefined;
  const record = (e: AuditEntry) => {
    count++;
    sent += e.bytesSent;
    summary.textContent = `Network log: ${count} requests, ${sent} bytes sent in all`;
    const key = `${e.method} ${e.url} ${e.status} ${e.bytesSent}`;
    const times = last?.key === key ? last.times + 1 : 1;
    const row = h(
      "tr",
      {},
      h("td", {}, new Date(e.at).toLocaleTimeString()),
      h("td", { class: "hash" }, `${e.method} ${e.url}${times > 1 ? ` (×${times})` : ""}`),
      h("td", {}, e.status || "no answer"),
      h("td", {}, e.bytesSent),
      h("td", {}, e.bytesReceived),
    );
    if (last && times > 1) last.row.replaceWith(row);
    else body.prepend(row);
    last = { key, row, times };
  };
  return { element, record };
}
