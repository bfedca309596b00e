import type { DatasetRow, FedwardDb } from "./db";

/** The federation's usable dataset: the one complete import, or undefined before the first one. */
export async function getCompleteDataset(
  db: FedwardDb,
  federationId: string,
): Promise<DatasetRow | undefined> {
  const rows = await db.datasets
    .where("federationId")
    .equals(federationId)
    .filter((d) => d.status === "complete")
    .toArray();
  // A commit leaves exactly one; should a second ever appear, the newest is the one the user chose last.
  return rows.sort((a, b) => b.createdAt - a.createdAt)[0];
}
