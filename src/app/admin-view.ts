import { durationText } from "../client/round-wait";
import {
  type AdminFederation,
  type AdminFederationsResponse,
  type AdminInviteResponse,
  type AdminMetricsResponse,
  type AdminRound,
  type AdminRoundActionResponse,
  type AdminRoundsResponse,
  type AdminSitesResponse,
  type AdminVersionMetrics,
  adminPaths,
} from "../core/admin-protocol";
import { lazyChart } from "./charts";
import { fmt, h, pct } from "./dom";

/**
 * The coordinator's admin page at /admin, served by the coordinator with the site app. The admin token
 * lives in this tab's sessionStorage only (never in the URL, never in localStorage) and goes out as a
 * bearer header to the same origin.
 */
const TOKEN_KEY = "fedward-admin-token";

class AdminApiError extends Error {
  override name = "AdminApiError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(token: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new AdminApiError(0, "The coordinator did not answer. Check that it is running, then try again.");
  }
  const json = (await response.json().catch(() => undefined)) as { message?: string } | undefined;
  if (!response.ok) {
    throw new AdminApiError(response.status, json?.message ?? `The coordinator answered ${response.status}.`);
  }
  return json as T;
}

const isAuthError = (e: unknown) => e instanceof AdminApiError && (e.status === 401 || e.status === 403);

function errorBox(e: unknown): HTMLElement {
  const retry = e instanceof AdminApiError && (e.status === 0 || e.status >= 500);
  return h(
    "p",
    { class: "error", role: "alert" },
    retry ? `Try again in a moment. ${(e as Error).message}` : (e as Error).message,
  );
}

function time(iso: string | null): HTMLElement | string {
  return iso === null ? "—" : h("time", { datetime: iso }, new Date(iso).toLocaleString());
}

function table(
  testId: string,
  caption: string,
  headers: string[],
  rows: HTMLElement[],
  empty: string,
): HTMLElement {
  const none = h("tr", { class: "empty" }, h("td", { colspan: String(headers.length) }, empty));
  return h(
    "table",
    { "data-testid": testId, class: "admin-table" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...(rows.length === 0 ? [none] : rows)),
  );
}

export function adminView(root: HTMLElement): void {
  document.title = "fedward — coordinator admin";
  document
    .querySelector(".tagline")
    ?.replaceChildren("Coordinator admin: federations, sites, rounds, invites.");
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) void showDashboard(root, saved);
  else showTokenForm(root);
}

function showTokenForm(root: HTMLElement, problem?: unknown): void {
  const input = h("input", {
    id: "admin-token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  }) as HTMLInputElement;
  const errors = h("div", {}, problem === undefined ? null : errorBox(problem));
  const form = h(
    "form",
    { "data-testid": "token-form", class: "admin-form" },
    h("label", { for: "admin-token" }, "Admin token"),
    input,
    h("button", { type: "submit" }, "Open the admin page"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === "") return;
    errors.replaceChildren();
    try {
      await call<AdminFederationsResponse>(token, adminPaths.federations);
    } catch (e) {
      errors.replaceChildren(errorBox(e));
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    await showDashboard(root, token);
  });
  root.replaceChildren(
    h(
      "section",
      {},
      h("h2", {}, "Coordinator admin"),
      h(
        "p",
        { class: "muted" },
        "The coordinator printed its admin token when it first started. This tab keeps it until you close " +
          "the tab or sign out, and sends it only to this coordinator.",
      ),
      form,
      errors,
    ),
  );
  input.focus();
}

async function showDashboard(root: HTMLElement, token: string): Promise<void> {
  const heading = h("h2", { tabindex: "-1" }, "Federations");
  const errors = h("div");
  const listArea = h("div");
  const detail = h("div", { "data-testid": "federation-detail" });
  let selected: string | undefined;

  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenForm(root);
  };
  // A token replaced at the coordinator stops working: back to the form, saying why.
  const fail = (e: unknown) => {
    if (isAuthError(e)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenForm(root, e);
    } else errors.replaceChildren(errorBox(e));
  };

  const select = async (federation: AdminFederation, focus: boolean, invite?: AdminInviteResponse) => {
    selected = federation.id;
    try {
      const [sites, rounds, metrics] = await Promise.all([
        call<AdminSitesResponse>(token, adminPaths.sites(federation.id)),
        call<AdminRoundsResponse>(token, adminPaths.rounds(federation.id)),
        call<AdminMetricsResponse>(token, adminPaths.metrics(federation.id)),
      ]);
      const title = h("h2", { tabindex: "-1", id: "federation-title" }, `Federation: ${federation.title}`);
      const form = inviteForm(federation, token, invite, async (made) => refresh(false, made), fail);
      // A round action, then the page again: the federation (and its open round) as the coordinator has it now.
      const act = async (path: string, body: unknown, shown: HTMLElement) => {
        shown.replaceChildren();
        try {
          const result = await call<AdminRoundActionResponse>(token, path, body);
          await refresh(false);
          return result;
        } catch (e) {
          if (isAuthError(e)) fail(e);
          else shown.replaceChildren(errorBox(e));
          return undefined;
        }
      };
      detail.replaceChildren(
        federationSection(title, federation, sites, form, act),
        roundsSection(federation, rounds, metrics.reportMetrics, act),
        metricsSection(federation, metrics),
      );
      if (focus) title.focus();
      // After an invite is made, focus stays in the form, ready for the next one.
      if (invite) form.querySelector("input")?.focus();
    } catch (e) {
      fail(e);
    }
  };

  const refresh = async (focus: boolean, invite?: AdminInviteResponse) => {
    errors.replaceChildren();
    let federations: AdminFederation[];
    try {
      ({ federations } = await call<AdminFederationsResponse>(token, adminPaths.federations));
    } catch (e) {
      fail(e);
      return;
    }
    listArea.replaceChildren(federationsTable(federations, (f) => select(f, true)));
    const current = federations.find((f) => f.id === selected) ?? federations[0];
    if (current) await select(current, false, invite);
    else detail.replaceChildren(h("p", {}, "This coordinator has no federation yet."));
    if (focus) heading.focus();
  };

  root.replaceChildren(
    h(
      "section",
      {},
      heading,
      h(
        "p",
        { class: "admin-actions" },
        h("button", { type: "button", onclick: () => void refresh(false) }, "Refresh"),
        h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"),
      ),
      errors,
      listArea,
    ),
    detail,
  );
  await refresh(true);
}

function federationsTable(federations: AdminFederation[], onSelect: (f: AdminFederation) => void) {
  return table(
    "federations",
    "Federations on this coordinator",
    ["Federation", "Plan SHA-256", "Status", "Round", "Sites enrolled", "Open invites", "Details"],
    federations.map((f) =>
      h(
        "tr",
        { "data-federation-id": f.id },
        h("td", {}, f.title, h("br"), h("span", { class: "muted" }, f.id)),
        h("td", { class: "hash", title: f.planHash }, `${f.planHash.slice(0, 16)}…`),
        h("td", {}, f.status),
        h("td", {}, `${Math.min(f.currentRound, f.rounds)} of ${f.rounds}`),
        h("td", {}, f.sitesEnrolled),
        h("td", {}, f.invitesOpen),
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              "aria-label": `Show ${f.title} (${f.id})`,
              onclick: () => onSelect(f),
            },
            "Show",
          ),
        ),
      ),
    ),
    "This coordinator has no federation yet.",
  );
}

type RoundAct = (
  path: string,
  body: unknown,
  shown: HTMLElement,
) => Promise<AdminRoundActionResponse | undefined>;

function federationSection(
  title: HTMLElement,
  federation: AdminFederation,
  { sites, invites }: AdminSitesResponse,
  form: HTMLElement,
  act: RoundAct,
): HTMLElement {
  const labels = new Map(sites.map((s) => [s.id, s.label]));
  const revokeResult = h("div", { role: "status", "data-testid": "revoke-result" });
  const revokeCell = (site: AdminSitesResponse["sites"][number]) => {
    if (site.revokedAt !== null) return h("td", {}, "revoked ", time(site.revokedAt));
    if (federation.status === "done") return h("td", {}, "took part");
    return h(
      "td",
      {},
      "takes part ",
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Revoke ${site.label}: its token stops working and rounds no longer wait for it`,
          onclick: () => void act(adminPaths.revokeSite(federation.id, site.id), {}, revokeResult),
        },
        "Revoke",
      ),
    );
  };
  return h(
    "section",
    { "aria-labelledby": "federation-title" },
    title,
    h("p", { class: "muted" }, `Id ${federation.id} · plan SHA-256 `, h("code", {}, federation.planHash)),
    h("h3", {}, "Sites"),
    table(
      "sites",
      "Enrolled sites; last seen is the site's latest request to the coordinator. A revoked site's token " +
        "stops working at once (an update it already sent stays counted); give it a new invite to take part again.",
      ["Site", "Enrolled", "Last seen", "Updates accepted", "Status"],
      sites.map((s) =>
        h(
          "tr",
          { "data-site-id": s.id, "data-revoked": String(s.revokedAt !== null) },
          h("td", {}, s.label),
          h("td", {}, time(s.enrolledAt)),
          h("td", {}, time(s.lastSeenAt)),
          h("td", {}, s.updatesAccepted),
          revokeCell(s),
        ),
      ),
      "No site has enrolled yet.",
    ),
    revokeResult,
    h("h3", {}, "Invites"),
    table(
      "invites",
      "Invites (their codes are shown only when made)",
      ["Site label", "Made", "Status"],
      invites.map((i) =>
        h(
          "tr",
          {},
          h("td", {}, i.siteLabel),
          h("td", {}, time(i.createdAt)),
          h("td", {}, i.siteId === null ? "not used yet" : `used by ${labels.get(i.siteId) ?? i.siteId}`),
        ),
      ),
      "No invites.",
    ),
    form,
  );
}

function inviteForm(
  federation: AdminFederation,
  token: string,
  shown: AdminInviteResponse | undefined,
  onMade: (invite: AdminInviteResponse) => Promise<void>,
  fail: (e: unknown) => void,
): HTMLElement {
  const input = h("input", {
    id: "invite-label",
    name: "siteLabel",
    type: "text",
    maxlength: "100",
    required: true,
    autocomplete: "off",
  }) as HTMLInputElement;
  const result = h(
    "div",
    { role: "status", "data-testid": "invite-result" },
    ...(shown === undefined
      ? []
      : [
          h(
            "p",
            {},
            `Invite for ${shown.siteLabel}. It is shown only now and enrols one site: send it to them.`,
          ),
          h("p", {}, "Code: ", h("code", { "data-testid": "invite-code" }, shown.code)),
          h("p", {}, "Link: ", h("code", { "data-testid": "invite-url" }, shown.url)),
        ]),
  );
  const done = federation.status === "done";
  const form = h(
    "form",
    { "data-testid": "invite-form", class: "admin-form" },
    h("label", { for: "invite-label" }, "Site label"),
    input,
    h("button", { type: "submit" }, "Create invite"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren();
    try {
      const invite = await call<AdminInviteResponse>(token, adminPaths.invites(federation.id), {
        siteLabel: input.value,
      });
      await onMade(invite);
    } catch (e) {
      if (isAuthError(e)) fail(e);
      else result.replaceChildren(errorBox(e));
    }
  });
  return h(
    "div",
    {},
    h("h3", {}, "New invite"),
    done
      ? h("p", { class: "muted" }, "The federation has finished its rounds; a new site could not train.")
      : form,
    result,
  );
}

function roundsSection(
  federation: AdminFederation,
  response: AdminRoundsResponse,
  reportMetrics: boolean,
  act: RoundAct,
): HTMLElement {
  const { minSites, rounds } = response;
  const open = rounds.find((r) => r.status === "open");
  return h(
    "section",
    {},
    h("h2", {}, "Rounds"),
    open && federation.status === "training" ? openRoundPanel(federation, response, open, act) : null,
    h(
      "p",
      { class: "muted" },
      (reportMetrics
        ? "This plan asks the sites for their held-out metrics (under Global metrics). "
        : "Sites send the coordinator no evaluation metrics: each site measures the global model on its own " +
          "held-out data and keeps the result, because this plan does not ask for them " +
          "(evaluation.reportMetrics). ") +
        "What the coordinator knows is shown here: who took part in " +
        `each round (it needs ${minSites === 1 ? "1 update" : `${minSites} updates`}), ` +
        "the L2 norm of each update as received (after the site's clipping and noise), refused uploads with " +
        "the reason the site was given, and timing.",
    ),
    table(
      "admin-rounds",
      "Rounds, oldest first",
      [
        "Round",
        "Status",
        "Accepted updates",
        "Refused uploads",
        "Mean update norm",
        "Opened",
        "Aggregated",
        "Deadline",
        "Closed because",
      ],
      rounds.map(roundRow),
      "No round yet.",
    ),
  );
}

function roundRow(r: AdminRound): HTMLElement {
  const minutes = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 60_000;
  return h(
    "tr",
    { "data-round": String(r.round), "data-status": r.status },
    h("td", {}, r.round),
    h("td", {}, r.status),
    h(
      "td",
      {},
      r.accepted.length === 0
        ? "none yet"
        : h(
            "ul",
            { class: "plain" },
            ...r.accepted.map((u) =>
              h("li", {}, `${u.siteLabel} · `, time(u.receivedAt), ` · norm ${fmt(u.l2Norm ?? undefined)}`),
            ),
          ),
    ),
    h(
      "td",
      {},
      r.refused.length === 0
        ? "none"
        : h(
            "ul",
            { class: "plain" },
            ...r.refused.map((u) =>
              h(
                "li",
                {},
                `${u.siteLabel}: refused ${u.attempts}× (HTTP ${u.statusCode}), last at `,
                time(u.refusedAt),
                `: ${u.reason}`,
              ),
            ),
          ),
    ),
    h("td", {}, fmt(r.meanUpdateNorm ?? undefined)),
    h("td", {}, time(r.openedAt)),
    h(
      "td",
      {},
      time(r.aggregatedAt),
      r.aggregatedAt === null ? null : ` (${fmt(minutes(r.openedAt, r.aggregatedAt), 1)} min)`,
    ),
    h(
      "td",
      {},
      r.deadline === null ? "none" : time(r.deadline),
      r.deadlineExtensions === 0 ? null : ` (moved on ${r.deadlineExtensions}×)`,
    ),
    h("td", {}, r.closeReason === null ? "—" : CLOSE_REASONS[r.closeReason]),
  );
}

const CLOSE_REASONS: Record<NonNullable<AdminRound["closeReason"]>, string> = {
  "all-reported": "every active site had sent",
  quorum: "enough sites had sent (no deadline)",
  deadline: "its deadline, with enough sites",
  admin: "closed early by the admin",
};

/**
 * The open round: how far it is, why it waits and for which sites, the time left by the coordinator's
 * clock, and the admin's actions on it (close now, move the deadline, change the quorum).
 */
function openRoundPanel(
  federation: AdminFederation,
  { minSites, sitesActive, serverTime }: AdminRoundsResponse,
  open: AdminRound,
  act: RoundAct,
): HTMLElement {
  const sent = open.accepted.length;
  const left = open.deadline === null ? undefined : Date.parse(open.deadline) - Date.parse(serverTime);
  const closes =
    left === undefined
      ? `It closes as soon as ${minSites} have sent (the plan sets no deadline).`
      : sent < minSites
        ? `Its deadline is ${new Date(open.deadline as string).toLocaleString()} (in ${durationText(left)}); ` +
          `it closes then only if ${minSites} have sent, otherwise the deadline moves on.`
        : `It closes when the other sites have sent or at ${new Date(open.deadline as string).toLocaleString()} ` +
          `(in ${durationText(left)}), whichever comes first.`;
  const waiting =
    open.waitingFor.length === 0
      ? ""
      : ` Waiting for: ${open.waitingFor.map((s) => s.siteLabel).join(", ")}.`;
  const shown = h("div", { role: "status", "data-testid": "round-action-result" });
  const deadlineInput = h("input", {
    id: "round-deadline",
    type: "datetime-local",
    required: true,
  }) as HTMLInputElement;
  const quorumInput = h("input", {
    id: "round-min-sites",
    type: "number",
    min: "1",
    max: "1000",
    value: String(minSites),
    required: true,
  }) as HTMLInputElement;
  const form = (
    id: string,
    label: string,
    input: HTMLInputElement,
    button: string,
    send: () => Promise<unknown>,
  ) => {
    const element = h(
      "form",
      { "data-testid": id, class: "admin-form" },
      h("label", { for: input.id }, label),
      input,
      h("button", { type: "submit" }, button),
    );
    element.addEventListener("submit", (event) => {
      event.preventDefault();
      void send();
    });
    return element;
  };
  return h(
    "div",
    { "data-testid": "open-round", "data-round": String(open.round) },
    h(
      "p",
      { "data-testid": "open-round-status" },
      `Round ${open.round} of ${federation.rounds} is open: ${sent} of ${sitesActive} active sites have sent ` +
        `their update; the round needs ${minSites}. ${closes}${waiting}`,
    ),
    h(
      "p",
      { class: "admin-actions" },
      h(
        "button",
        {
          type: "button",
          disabled: sent < minSites,
          title: sent < minSites ? `Needs ${minSites} updates first` : undefined,
          onclick: () => void act(adminPaths.closeRound(federation.id, open.round), {}, shown),
        },
        "Close the round now",
      ),
    ),
    form("deadline-form", "New deadline for this round", deadlineInput, "Move the deadline", () =>
      act(
        adminPaths.roundDeadline(federation.id, open.round),
        { deadline: new Date(deadlineInput.value).toISOString() },
        shown,
      ),
    ),
    form("min-sites-form", "Quorum (sites needed per round)", quorumInput, "Change the quorum", () =>
      act(adminPaths.minSites(federation.id), { minSites: Number(quorumInput.value) }, shown),
    ),
    shown,
  );
}

/**
 * Per model version, the sites' held-out metrics pooled (weighted by held-out examples), a chart of the
 * mean accuracy, and each site's own values behind a disclosure. Only under a plan with reportMetrics.
 */
function metricsSection(federation: AdminFederation, { reportMetrics, versions }: AdminMetricsResponse) {
  const heading = h("h2", {}, "Global metrics over rounds");
  if (!reportMetrics) {
    return h(
      "section",
      { "data-testid": "admin-metrics-none" },
      heading,
      h(
        "p",
        {},
        "No metrics: this federation's plan does not ask the sites for them (evaluation.reportMetrics is not " +
          "true), so no site sends its held-out accuracy or loss. A plan that asks says so to each site " +
          "before the site approves it.",
      ),
    );
  }
  const chart = lazyChart(
    {
      title: "Mean held-out accuracy of each global model",
      yLabel: "Accuracy",
      range: [0, 1],
      versions: federation.rounds,
      format: (v) => `${Math.round(v * 100)}%`,
      series: [{ label: "Weighted mean across sites", stroke: "#0b62a4", value: (p) => p.accuracy }],
    },
    "admin-metrics-chart",
    "Mean accuracy of each global model across the reporting sites (numbers in the table below)",
  );
  const element = h(
    "section",
    {},
    heading,
    h(
      "p",
      { class: "muted" },
      "Each site evaluates every global model on its own held-out data and, as its approved plan says, " +
        "sends the accuracy, the loss and the number of held-out examples, without noise. The means weight " +
        "each site by its held-out examples. A site that evaluates a version again replaces its report.",
    ),
    chart.element,
    table(
      "admin-metrics",
      "Global metrics per model version (version v is the model after v rounds), oldest first",
      ["Model version", "Sites reported", "Held-out examples", "Mean accuracy", "Mean loss", "Per site"],
      versions.map(metricsRow),
      "No site has reported metrics yet.",
    ),
  );
  chart.update(versions.map((v) => ({ version: v.modelVersion, accuracy: v.meanAccuracy ?? undefined })));
  return element;
}

function metricsRow(v: AdminVersionMetrics): HTMLElement {
  return h(
    "tr",
    { "data-model-version": String(v.modelVersion) },
    h("td", {}, v.modelVersion),
    h("td", {}, v.sitesReported),
    h("td", {}, v.numExamples),
    h("td", {}, pct(v.meanAccuracy ?? undefined)),
    h("td", {}, fmt(v.meanLoss ?? undefined)),
    h(
      "td",
      {},
      h(
        "details",
        {},
        h("summary", {}, v.sitesReported === 1 ? "1 site" : `${v.sitesReported} sites`),
        h(
          "ul",
          { class: "plain" },
          ...v.sites.map((s) =>
            h(
              "li",
              {},
              `${s.siteLabel}: accuracy ${pct(s.accuracy)}, loss ${fmt(s.loss)}, ${s.numExamples} examples, `,
              time(s.reportedAt),
            ),
          ),
        ),
      ),
    ),
  );
}
