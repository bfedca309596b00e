import type { FedwardDb, ReleaseRow } from "./db";

/** This site's releases in one federation, in round order. */
export function releasesOf(db: FedwardDb, federationId: string): Promise<ReleaseRow[]> {
  return db.releases.where("federationId").equals(federationId).sortBy("round");
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

/** What the coordinator said about a release: accepted (sentAt) or refused because the round moved on. */
export async function settleRelease(
  db: FedwardDb,
  federationId: string,
  round: number,
  outcome: { sentAt: number } | { refused: string },
): Promise<void> {
  await db.releases.update([federationId, round], outcome);
}
