import type { FederationState, UploadReceipt } from "../core/protocol";
import type { Queryable } from "./db";
import type { Federation } from "./records";
import type { OpenRound } from "./rounds";

/**
 * What the state route tells one site: the open round, how far it is and why it waits (counts only, never
 * which sites), and the coordinator's receipt for this site's upload.
 */
export async function siteStateIn(
  db: Queryable,
  federation: Federation,
  open: OpenRound | undefined,
  siteId: string,
  receiptFor: number | undefined,
  now: number,
): Promise<FederationState> {
  const { id, currentRound, plan } = federation;
  const [counts] = await db.query<{ sites: number; active: number; updates: number; mine: number }>(
    `SELECT (SELECT count(*)::int FROM sites WHERE federation_id = $1) AS sites,
            (SELECT count(*)::int FROM sites WHERE federation_id = $1 AND revoked_at IS NULL) AS active,
            (SELECT count(*)::int FROM updates WHERE federation_id = $1 AND round = $2) AS updates,
            (SELECT count(*)::int FROM updates WHERE federation_id = $1 AND round = $2 AND site_id = $3) AS mine`,
    [id, currentRound, siteId],
  );
  const updates = counts?.updates ?? 0;
  return {
    federationId: id,
    title: federation.title,
    planHash: federation.planHash,
    status: federation.status,
    round: currentRound,
    rounds: plan.rounds,
    // Round r's aggregate is model version r, so the latest model is one behind the open round.
    modelVersion: currentRound - 1,
    minSites: federation.minSites,
    sitesEnrolled: counts?.sites ?? 0,
    sitesActive: counts?.active ?? 0,
    updatesThisRound: updates,
    uploadedThisRound: (counts?.mine ?? 0) > 0,
    deadline: open?.deadline == null ? null : new Date(open.deadline).toISOString(),
    deadlineExtensions: open?.extensions ?? 0,
    serverTime: new Date(now).toISOString(),
    waitingFor: !open ? null : updates < federation.minSites ? "quorum" : "sites",
    myUpload: await receiptIn(db, federation, siteId, receiptFor),
  };
}

/**
 * The site's receipt for `round` (default: the latest round it sent to or was refused for). An accepted
 * update wins over a refusal of the same round: that is a retry of an update already held ("already
 * uploaded", or "not open" after its own upload closed the round).
 */
export async function receiptIn(
  db: Queryable,
  federation: Federation,
  siteId: string,
  round: number | undefined,
): Promise<UploadReceipt | null> {
  const params = [federation.id, siteId, round ?? null];
  const [accepted] = await db.query<{ round: number; received_at: Date }>(
    `SELECT round, received_at FROM updates WHERE federation_id = $1 AND site_id = $2
       AND ($3::int IS NULL OR round = $3) ORDER BY round DESC LIMIT 1`,
    params,
  );
  const [refused] = await db.query<{ round: number; status_code: number; reason: string; refused_at: Date }>(
    `SELECT round, status_code, reason, refused_at FROM refused_updates WHERE federation_id = $1 AND site_id = $2
       AND ($3::int IS NULL OR round = $3) ORDER BY round DESC LIMIT 1`,
    params,
  );
  if (accepted && (!refused || accepted.round >= refused.round)) {
    const counted = accepted.round < federation.currentRound;
    return {
      round: accepted.round,
      status: counted ? "counted" : "accepted",
      modelVersion: counted ? accepted.round : null,
      at: accepted.received_at.toISOString(),
      statusCode: 202,
      reason: null,
    };
  }
  if (!refused) return null;
  return {
    round: refused.round,
    status: "refused",
    modelVersion: null,
    at: refused.refused_at.toISOString(),
    statusCode: refused.status_code,
    reason: refused.reason,
  };
}
