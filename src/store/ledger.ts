import { epsilonSpent, type ReleaseCost } from "../core/privacy/budget";
import type { UploadReceipt } from "../core/protocol";
import type { FedwardDb, ReleaseRow } from "./db";

/** This site's releases in one federation, in round order. */
export function releasesOf(db: FedwardDb, federationId: string): Promise<ReleaseRow[]> {
  return db.releases.where("federationId").equals(federationId).sortBy("round");
}

/**
 * Whether a ledger row counts against the privacy budget: every release does, sent or not yet, except one
 * the site withheld (its bytes never left and never will, so nothing was released).
 */
export function countsAgainstBudget(r: ReleaseRow): boolean {
  return r.withheldAt === undefined;
}

/**
 * The ledger of one federation (every row, withheld ones included, in round order) and the epsilon its
 * counted releases spent together, at the plan's delta.
 */
export async function ledgerOf(
  db: FedwardDb,
  federationId: string,
  delta: number,
): Promise<{ releases: ReleaseRow[]; spent: number }> {
  const releases = await releasesOf(db, federationId);
  const spent = epsilonSpent(releases.filter(countsAgainstBudget).map(releaseCost), delta);
  return { releases, spent };
}

/** What a ledger row cost, for the accountant (src/core/privacy/budget.ts). */
export function releaseCost(r: ReleaseRow): ReleaseCost {
  if (r.mechanism !== "dp-sgd") return { mechanism: "site-update", noiseMultiplier: r.noiseMultiplier };
  if (r.samplingRate === undefined || r.steps === undefined)
    throw new Error(
      `The ledger row of round ${r.round} is a dp-sgd release without its sampling rate or steps; this is a bug in fedward.`,
    );
  return {
    mechanism: "dp-sgd",
    noiseMultiplier: r.noiseMultiplier,
    samplingRate: r.samplingRate,
    steps: r.steps,
  };
}

export function releaseFor(
  db: FedwardDb,
  federationId: string,
  round: number,
): Promise<ReleaseRow | undefined> {
  return db.releases.get([federationId, round]);
}

/**
 * Writes a release before it is sent. `add`, not `put`: a round has at most one release, and an attempt to
 * make a second one (fresh noise for the same round) fails here instead of overwriting the first.
 */
export async function recordRelease(db: FedwardDb, row: ReleaseRow): Promise<void> {
  await db.releases.add(row);
}

/**
 * What the coordinator said about a release: accepted (sentAt) or refused because the round moved on, with
 * its receipt when it gave one. Once accepted, the bytes are no longer needed for a retry and are dropped (a
 * model of 10^6 weights is 4 MB a round); their size and SHA-256 stay. A refused release keeps counting
 * against the budget (countsAgainstBudget): its bytes left this site.
 */
export async function settleRelease(
  db: FedwardDb,
  federationId: string,
  round: number,
  outcome: ({ sentAt: number } | { refused: string }) & { receipt?: UploadReceipt },
): Promise<void> {
  const patch = "sentAt" in outcome ? { ...outcome, body: undefined } : outcome;
  await db.releases.update([federationId, round], patch);
}

/**
 * Keeps a newer receipt for a release the coordinator accepted: "counted in model version v" once its
 * round closed. Returns whether the row changed.
 */
export async function recordReceipt(
  db: FedwardDb,
  federationId: string,
  receipt: UploadReceipt,
): Promise<boolean> {
  const row = await releaseFor(db, federationId, receipt.round);
  if (!row || row.withheldAt !== undefined || row.receipt?.status === receipt.status) return false;
  // A release not sent yet (waiting for review, or a retry) gets its receipt when its upload settles.
  if (row.sentAt === undefined && row.refused === undefined) return false;
  // Only forward: a refusal of a retry does not undo the receipt of the update the coordinator counted.
  if (row.receipt?.status === "counted" || (row.sentAt !== undefined && receipt.status === "refused"))
    return false;
  await db.releases.update([federationId, receipt.round], { receipt });
  return true;
}

/**
 * The site declined to send a recorded release ("Do not send this round"): the row stays as "withheld", its
 * bytes are dropped so that no retry or reload can send them, and it no longer counts against the budget.
 */
export async function withholdRelease(db: FedwardDb, federationId: string, round: number): Promise<void> {
  await db.releases.update([federationId, round], { withheldAt: Date.now(), body: undefined });
}

/** The upload review (or the page, with review off) let this release go. */
export async function approveRelease(db: FedwardDb, federationId: string, round: number): Promise<void> {
  await db.releases.update([federationId, round], { approvedAt: Date.now() });
}
