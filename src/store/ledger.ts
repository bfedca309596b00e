import { exactGaussianEpsilon } from "../core/privacy/accounting";
import type { FedwardDb, ReleaseRow } from "./db";

/** This site's releases in one federation, in round order. */
export function releasesOf(db: FedwardDb, federationId: string): Promise<ReleaseRow[]> {
  return db.releases.where("federationId").equals(federationId).sortBy("round");
}

/** The ledger of one federation and the epsilon its releases spent together, at the plan's delta. */
export async function ledgerOf(
  db: FedwardDb,
  federationId: string,
  delta: number,
): Promise<{ releases: ReleaseRow[]; spent: number }> {
  const releases = await releasesOf(db, federationId);
  const spent = exactGaussianEpsilon(
    releases.map((r) => r.noiseMultiplier),
    delta,
  );
  return { releases, spent };
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
 * What the coordinator said about a release: accepted (sentAt) or refused because the round moved on. Once
 * accepted, the bytes are no longer needed for a retry and are dropped (a model of 10^6 weights is 4 MB a
 * round); their size and SHA-256 stay.
 */
export async function settleRelease(
  db: FedwardDb,
  federationId: string,
  round: number,
  outcome: { sentAt: number } | { refused: string },
): Promise<void> {
  const patch = "sentAt" in outcome ? { ...outcome, body: undefined } : outcome;
  await db.releases.update([federationId, round], patch);
}
