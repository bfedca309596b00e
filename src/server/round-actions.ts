import type { AdminRoundActionResponse } from "../core/admin-protocol";
import type { Strategy } from "../core/strategy";
import type { Queryable } from "./db";
import { type Federation, StorageError } from "./records";
import { closeIn, lockFederation, type Settled, settleIn } from "./rounds";

/**
 * The admin's actions on a federation's rounds, each in the caller's transaction with the federation row
 * locked, and each settling the round first: an action never works on a round that should already have
 * closed, and one that changes who or how many a round waits for may close it at once.
 */

export type RoundAction =
  | { kind: "close"; round: number }
  | { kind: "deadline"; round: number; deadline: number }
  | { kind: "min-sites"; minSites: number }
  | { kind: "revoke"; siteId: string };

export async function roundActionIn(
  tx: Queryable,
  strategy: Strategy,
  federationId: string,
  action: RoundAction,
  now: number,
): Promise<AdminRoundActionResponse> {
  const federation = await lockFederation(tx, federationId);
  if (action.kind === "min-sites" || action.kind === "revoke") {
    // The change first, then one settling under it: a round whose deadline passed short of the old quorum
    // closes at once when the admin lowers it, rather than being extended first.
    await changeWhoCounts(tx, federation, action, now);
    const minSites = action.kind === "min-sites" ? action.minSites : federation.minSites;
    return response(await settleIn(tx, strategy, { ...federation, minSites }, now));
  }
  const settled = await settleIn(tx, strategy, federation, now);
  if (action.kind === "close" && settled.closed?.round === action.round) return response(settled);
  const { open } = settled;
  if (!open || open.round !== action.round) {
    throw new StorageError(
      "conflict",
      open
        ? `Round ${action.round} is not open; round ${open.round} is.`
        : `The federation finished all ${federation.plan.rounds} rounds; no round is open.`,
    );
  }
  if (action.kind === "close") {
    if (open.updates < settled.federation.minSites) {
      throw new StorageError(
        "conflict",
        `Round ${open.round} has ${open.updates} of the ${settled.federation.minSites} updates it needs, so it ` +
          "cannot close: wait for more sites, or lower minSites first.",
      );
    }
    return response(await closeIn(tx, strategy, settled.federation, open, "admin", now));
  }
  if (action.deadline <= now) {
    throw new StorageError(
      "invalid",
      `The new deadline ${new Date(action.deadline).toISOString()} is not in the future; to close the round now, close it.`,
    );
  }
  await tx.query("UPDATE rounds SET deadline = $3 WHERE federation_id = $1 AND round = $2", [
    federation.id,
    open.round,
    new Date(action.deadline),
  ]);
  return response({ ...settled, open: { ...open, deadline: action.deadline } });
}

async function changeWhoCounts(
  tx: Queryable,
  federation: Federation,
  action: Extract<RoundAction, { kind: "min-sites" | "revoke" }>,
  now: number,
): Promise<void> {
  if (action.kind === "min-sites") {
    await tx.query("UPDATE federations SET min_sites = $2 WHERE id = $1", [federation.id, action.minSites]);
    return;
  }
  const revoked = await tx.query(
    "UPDATE sites SET revoked_at = $3 WHERE id = $1 AND federation_id = $2 AND revoked_at IS NULL RETURNING id",
    [action.siteId, federation.id, new Date(now)],
  );
  if (revoked.length === 0) {
    throw new StorageError(
      "not-found",
      `Federation "${federation.id}" has no site "${action.siteId}" that takes part; it may be revoked already.`,
    );
  }
}

function response(after: Settled): AdminRoundActionResponse {
  const { closed } = after;
  return {
    status: after.federation.status,
    currentRound: after.federation.currentRound,
    minSites: after.federation.minSites,
    deadline: after.open?.deadline == null ? null : new Date(after.open.deadline).toISOString(),
    closed: closed ? { round: closed.round, modelVersion: closed.round, reason: closed.reason } : null,
  };
}
