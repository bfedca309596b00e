import type { FedwardDb, ShardRow, Split } from "../../src/store/db";

/**
 * Yields a complete dataset's shards of one split in index order, one read each, so a training epoch
 * holds one shard in memory at a time. Throws if a new import replaces the dataset mid-read, rather
 * than silently training on part of it.
 */
export async function* readShards(db: FedwardDb, datasetId: string, split: Split): AsyncGenerator<ShardRow> {
  const dataset = await db.datasets.get(datasetId);
  if (dataset?.status !== "complete") {
    throw new Error(`Dataset ${datasetId} is not a complete import; use the one getCompleteDataset returns.`);
  }
  const expected = split === "train" ? dataset.numTrain : dataset.numHoldout;
  let seen = 0;
  for (let index = 0; seen < expected; index++) {
    const shard = await readShard(db, datasetId, split, index);
    seen += shard.count;
    yield shard;
  }
}

/** How many shards one split of a dataset has (for shuffled, one-at-a-time reads). */
export function countShards(db: FedwardDb, datasetId: string, split: Split): Promise<number> {
  return db.shards
    .where("[datasetId+split+index]")
    .between([datasetId, split, 0], [datasetId, split, Number.MAX_SAFE_INTEGER], true, true)
    .count();
}

/** One shard, checked; throws if a new import replaced the dataset since the caller started reading. */
export async function readShard(
  db: FedwardDb,
  datasetId: string,
  split: Split,
  index: number,
): Promise<ShardRow> {
  const shard = await db.shards.where("[datasetId+split+index]").equals([datasetId, split, index]).first();
  if (shard === undefined) {
    throw new Error(
      `Shard ${index} of the ${split} data of dataset ${datasetId} is gone: a new import replaced it while ` +
        "it was being read. Start again; the new data will be used.",
    );
  }
  checkShard(shard);
  return shard;
}

/** IndexedDB is an edge: a row written by an older version or another tab is checked, not trusted. */
function checkShard(shard: ShardRow): void {
  const ok =
    Number.isInteger(shard.count) &&
    shard.count > 0 &&
    shard.x instanceof Float32Array &&
    shard.y instanceof Float32Array &&
    shard.y.length === shard.count &&
    shard.x.length % shard.count === 0 &&
    (shard.unit === undefined || (shard.unit instanceof Uint32Array && shard.unit.length === shard.count));
  if (!ok) {
    throw new Error(
      `Shard ${shard.index} of dataset ${shard.datasetId} is malformed (our bug or a damaged browser store). Import the file again.`,
    );
  }
}
