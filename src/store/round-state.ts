import type { CheckpointRow, FedwardDb, ReleaseRow } from "./db";
import { recordRelease } from "./ledger";

/**
 * The round state that outlives the page: the training checkpoint of the round in progress (written by the
 * training worker, read by the federation loop) and whether the site has joined training.
 */

/** Saves a checkpoint and deletes the federation's others, in one transaction: one checkpoint per federation. */
export async function saveCheckpoint(db: FedwardDb, row: CheckpointRow): Promise<void> {
  await db.transaction("rw", db.checkpoints, async () => {
    await db.checkpoints.where("federationId").equals(row.federationId).delete();
    await db.checkpoints.put(row);
  });
}

/** The federation's checkpoint, if any (there is at most one). */
export async function checkpointOf(db: FedwardDb, federationId: string): Promise<CheckpointRow | undefined> {
  return (await db.checkpoints.where("federationId").equals(federationId).toArray())[0];
}

export async function dropCheckpoints(db: FedwardDb, federationId: string): Promise<void> {
  await db.checkpoints.where("federationId").equals(federationId).delete();
}

/**
 * Writes the round's release to the ledger and deletes the checkpoint it was trained from, together: after
 * a reload the round is either still resumable or has its release (sent again as recorded), never both and
 * never neither.
 */
export async function recordReleaseDroppingCheckpoint(db: FedwardDb, release: ReleaseRow): Promise<void> {
  await db.transaction("rw", db.releases, db.checkpoints, async () => {
    await recordRelease(db, release);
    await dropCheckpoints(db, release.federationId);
  });
}

/** Marks the site as taking part (the page continues by itself when opened again) or not. */
export async function setJoined(db: FedwardDb, federationId: string, joined: boolean): Promise<void> {
  await db.enrollments.update(federationId, { joinedAt: joined ? Date.now() : undefined });
}
