import type { FederationState } from "../core/protocol";

/** A duration in words, coarse enough to read at a glance: "45 s", "3 min 20 s", "2 h 5 min", "3 days". */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 48 * 60) {
    const h = Math.floor(minutes / 60);
    return minutes % 60 === 0 ? `${h} h` : `${h} h ${minutes % 60} min`;
  }
  return `${Math.round(minutes / 1440)} days`;
}

/**
 * The time left in the open round by the coordinator's clock (its deadline minus the time it answered), so a
 * site whose own clock is off still counts down right; undefined when the round has no deadline.
 */
export function timeLeftMs(state: Pick<FederationState, "deadline" | "serverTime">): number | undefined {
  if (state.deadline === null) return undefined;
  return Math.max(0, Date.parse(state.deadline) - Date.parse(state.serverTime));
}

/**
 * Why the open round has not closed, in one sentence for the site's status line: how many of the active
 * sites have sent, the quorum, the time left and what happens then. Counts only, as the coordinator tells
 * a site: which sites are missing is for the admin.
 */
export function roundWaitText(state: FederationState): string {
  const { updatesThisRound: sent, sitesActive: active, minSites, deadlineExtensions: extended } = state;
  if (state.status === "done") return "The federation has finished its rounds.";
  const have = `${sent} of ${active} ${active === 1 ? "site has" : "sites have"} sent ${active === 1 ? "its" : "their"} update`;
  const left = timeLeftMs(state);
  const at =
    left === undefined
      ? undefined
      : `${new Date(Date.now() + left).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} (in ${durationText(left)})`;
  const moved =
    extended === 0
      ? ""
      : ` The deadline has moved on ${extended === 1 ? "once" : `${extended} times`} so far.`;
  if (state.waitingFor === "quorum") {
    if (at === undefined) return `${have}; the round closes as soon as ${minSites} have.`;
    return (
      `${have}; the round needs ${minSites}. It closes at ${at} if ${minSites} have sent by then; otherwise its ` +
      `deadline moves on.${moved}`
    );
  }
  if (at === undefined) return `${have}; the round closes in a moment.`;
  return `${have}; the round closes when the other ${active - sent === 1 ? "site has" : "sites have"} sent or at ${at}, whichever comes first.${moved}`;
}
