import {
  type DatasetRow,
  type FedwardDb,
  type ImportProblem,
  MAX_PROBLEMS,
  SHARD_SIZE,
  type ShardRow,
  type SourceFile,
  type Split,
} from "../../src/store/db";
import { isHoldout } from "./holdout";
import { type ExampleSink, ImportError, type ParseStats } from "./parser";
import { type UnitKey, UnitNumbering } from "./units";

/** Full shards are written this many at a time: one bulkAdd per ~2k examples, ~250 kB held at most. */
const SHARDS_PER_WRITE = 8;

export interface DatasetMeta {
  federationId: string;
  planHash: string;
  fileName: string;
  /** The manifest's list of files, when the caller hashed them. */
  sources?: SourceFile[];
  numFeatures: number;
  holdoutFraction: number;
  /**
   * The plan groups examples by patient (csv.patientColumn, DICOM PatientID): every shard then carries unit
   * numbers (ShardRow.unit). Without it each example is its own unit and shards carry none.
   */
  units?: boolean;
}

/** What the page shows after an import. */
export type ImportSummary = Pick<
  DatasetRow,
  | "id"
  | "fileName"
  | "numTrain"
  | "numHoldout"
  | "trainUnits"
  | "positives"
  | "negatives"
  | "rowsRead"
  | "rowsSkipped"
  | "imputed"
  | "sources"
  | "importMs"
  | "problems"
  | "problemCount"
>;

/**
 * Writes one import under a new dataset id. The previous dataset of the federation stays the complete one
 * until `importDataset`'s final transaction swaps them, so a failed, cancelled or killed import loses
 * nothing. A killed worker leaves an 'importing' row behind; the next successful import sweeps it.
 */
export async function importDataset(
  db: FedwardDb,
  meta: DatasetMeta,
  parse: (sink: ExampleSink) => Promise<ParseStats>,
): Promise<DatasetRow> {
  const writer = new ShardWriter(db, meta);
  await db.datasets.add(writer.row);
  try {
    writer.finish(await parse(writer));
    await writer.flush(true);
    writer.row.importMs = Date.now() - writer.row.createdAt;
    await commit(db, writer.row);
    return writer.row;
  } catch (error) {
    // If even the clean-up fails, the first error is the one to show; the stale row is swept later.
    await discard(db, writer.row.id).catch(() => undefined);
    throw error;
  }
}

async function discard(db: FedwardDb, datasetId: string): Promise<void> {
  await db.transaction("rw", db.datasets, db.shards, async () => {
    await db.shards.where("datasetId").equals(datasetId).delete();
    await db.datasets.delete(datasetId);
  });
}

export function toSummary(row: DatasetRow): ImportSummary {
  const { id, fileName, numTrain, numHoldout, trainUnits, positives, negatives } = row;
  const { rowsRead, rowsSkipped, imputed, sources, importMs, problems, problemCount } = row;
  return {
    id,
    fileName,
    numTrain,
    numHoldout,
    ...(trainUnits !== undefined ? { trainUnits } : {}),
    positives,
    negatives,
    rowsRead,
    rowsSkipped,
    imputed,
    sources,
    importMs,
    problems,
    problemCount,
  };
}

async function commit(db: FedwardDb, row: DatasetRow): Promise<void> {
  await db.transaction("rw", db.datasets, db.shards, async () => {
    const own = await db.datasets.get(row.id);
    if (own?.status !== "importing") {
      throw new Error(`Import ${row.id} was removed by another import of the same federation; import again.`);
    }
    const previous = await db.datasets
      .where("federationId")
      .equals(row.federationId)
      .filter((d) => d.id !== row.id)
      .primaryKeys();
    await db.shards.where("datasetId").anyOf(previous).delete();
    await db.datasets.bulkDelete(previous);
    await db.datasets.put({ ...row, status: "complete" });
  });
  row.status = "complete";
}

class ShardWriter implements ExampleSink {
  readonly row: DatasetRow;
  private readonly open: Record<Split, ShardRow>;
  private pending: ShardRow[] = [];
  private readonly numbering: UnitNumbering | undefined;

  constructor(
    private readonly db: FedwardDb,
    private readonly meta: DatasetMeta,
  ) {
    const { federationId, planHash, fileName } = meta;
    this.row = {
      id: crypto.randomUUID(),
      federationId,
      planHash,
      fileName,
      status: "importing",
      createdAt: Date.now(),
      numTrain: 0,
      numHoldout: 0,
      positives: 0,
      negatives: 0,
      rowsRead: 0,
      rowsSkipped: 0,
      imputed: {},
      ...(meta.sources ? { sources: meta.sources } : {}),
      problems: [],
      problemCount: 0,
    };
    this.numbering = meta.units ? new UnitNumbering() : undefined;
    this.open = { train: this.newShard("train", 0), holdout: this.newShard("holdout", 0) };
  }

  async add(x: Float32Array, y: 0 | 1, line: number, unit?: UnitKey): Promise<void> {
    let split: Split = isHoldout(line, this.meta.holdoutFraction) ? "holdout" : "train";
    // A unit's examples all go where its first one went: a patient is trained on or held out, not both.
    const assigned = this.numbering?.assign(unit, split);
    if (assigned) split = assigned.split;
    const shard = this.open[split];
    shard.x.set(x, shard.count * this.meta.numFeatures);
    if (shard.unit && assigned) shard.unit[shard.count] = assigned.unit;
    shard.y[shard.count++] = y;
    if (split === "train") this.row.numTrain++;
    else this.row.numHoldout++;
    if (y === 1) this.row.positives++;
    else this.row.negatives++;
    if (shard.count === SHARD_SIZE) {
      this.pending.push(shard);
      this.open[split] = this.newShard(split, shard.index + 1);
      if (this.pending.length >= SHARDS_PER_WRITE) await this.flush(false);
    }
  }

  problem(problem: ImportProblem): void {
    if (this.row.problems.length < MAX_PROBLEMS) this.row.problems.push(problem);
    this.row.problemCount++;
  }

  finish(stats: ParseStats): void {
    this.row.rowsRead = stats.rowsRead;
    this.row.rowsSkipped = stats.rowsSkipped;
    this.row.imputed = stats.imputed;
    this.row.trainUnits = this.numbering ? this.numbering.units.train : this.row.numTrain;
    if (stats.sources) this.row.sources = stats.sources;
    if (this.row.numTrain + this.row.numHoldout > 0) return;
    const first = this.row.problems[0];
    const why = first
      ? `all ${stats.rowsRead} rows have problems (the first: line ${first.line}, column "${first.column}": ${first.message})`
      : "it has a header but no data rows";
    throw new ImportError(
      `${this.meta.fileName} has no usable rows: ${why}. Fix the file and import it again.`,
    );
  }

  /** Writes the full shards; with `last`, the partly filled ones too. */
  async flush(last: boolean): Promise<void> {
    if (last) {
      for (const shard of Object.values(this.open)) {
        if (shard.count > 0) this.pending.push(trim(shard, this.meta.numFeatures));
      }
    }
    if (this.pending.length === 0) return;
    const shards = this.pending;
    this.pending = [];
    await this.db.shards.bulkAdd(shards);
  }

  private newShard(split: Split, index: number): ShardRow {
    const x = new Float32Array(SHARD_SIZE * this.meta.numFeatures);
    const shard: ShardRow = {
      datasetId: this.row.id,
      split,
      index,
      count: 0,
      x,
      y: new Float32Array(SHARD_SIZE),
    };
    if (this.numbering) shard.unit = new Uint32Array(SHARD_SIZE);
    return shard;
  }
}

function trim(shard: ShardRow, numFeatures: number): ShardRow {
  const x = shard.x.slice(0, shard.count * numFeatures);
  const y = shard.y.slice(0, shard.count);
  return shard.unit ? { ...shard, x, y, unit: shard.unit.slice(0, shard.count) } : { ...shard, x, y };
}
