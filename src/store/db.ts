import Dexie, { type EntityTable } from "dexie";
import type { ConditionFact, EncounterFact, ObservationFact, PatientFact } from "../core/cohort/facts";
import type { Span } from "../core/cohort/time";
import type { Plan } from "../core/plan";
import type { UploadReceipt } from "../core/protocol";

/**
 * The site's IndexedDB, shared by the page and the workers. Only features, labels and pseudonymous
 * ids are ever written here: never names, MRNs, addresses or exact dates.
 */

/** This browser's enrollment in a federation (one row per federation). */
export interface EnrollmentRow {
  federationId: string;
  coordinatorUrl: string;
  siteId: string;
  siteLabel: string;
  token: string;
  plan: Plan;
  planHash: string;
  enrolledAt: number;
  /**
   * Set when the clinician clicks "Join training", cleared on "Leave" and when the federation ends for this
   * site: a page opened while it is set continues training by itself (reload, a closed tab, a restart).
   */
  joinedAt?: number;
  /**
   * The plan this site approved ("I approve this plan") and when. Approval holds for that SHA-256 only: a
   * new plan (re-enrolment) needs approval again. Absent in rows made before approvals: then not approved.
   * Plain fields, not indexed, so no schema version is needed and older rows read as they are.
   */
  approvedPlanHash?: string;
  approvedAt?: number;
  /** Review and approve each upload before it is sent (the Privacy step's option; off when absent). */
  reviewUploads?: boolean;
}

export type Split = "train" | "holdout";

/** A completed import. Shards of a dataset count only once its row says `complete`. */
export interface DatasetRow {
  id: string;
  federationId: string;
  planHash: string;
  fileName: string;
  status: "importing" | "complete";
  createdAt: number;
  numTrain: number;
  numHoldout: number;
  positives: number;
  negatives: number;
  rowsRead: number;
  rowsSkipped: number;
  /** The files this dataset was read from (absent in imports made before manifests). */
  sources?: SourceFile[];
  /** Wall time of the import, ms. */
  importMs?: number;
  /** Missing values filled in by the plan's rule, per feature name (absent in imports before this field). */
  imputed?: Record<string, number>;
  /** At most MAX_PROBLEMS problems are kept; problemCount is the full count. */
  problems: ImportProblem[];
  problemCount: number;
  /**
   * Units of privacy (patients; rows or images where the plan has no patients) in the train split, the N of
   * DP-SGD's sampling rate and accounting. Absent (imports before units): every example is its own unit.
   */
  trainUnits?: number;
}

/** One imported file in a dataset's manifest: enough to tell whether a re-import is the same file. */
export interface SourceFile {
  name: string;
  size: number;
  sha256: string;
  /** For a file of a FHIR or OMOP export: resources (or rows) read from it and problems found in it. */
  records?: number;
  problems?: number;
}

export interface ImportProblem {
  /** 1-based line number in the file, counting the header as line 1. */
  line: number;
  column: string;
  message: string;
}

/**
 * Many examples per record as typed arrays: one IndexedDB record per row is ~28x slower to write and read.
 * x is row-major [count, numFeatures], y is 0/1.
 */
export interface ShardRow {
  id?: number;
  datasetId: string;
  split: Split;
  index: number;
  count: number;
  x: Float32Array;
  y: Float32Array;
  /**
   * Per example, the number of the unit (patient) it belongs to: 0-based, dataset-wide, assigned in order of
   * first appearance by the import worker and never derived from an identifier's value. All of a unit's
   * examples are in one split. Absent: every example is its own unit.
   */
  unit?: Uint32Array;
}

/** Per-round history the site keeps for itself (evaluations and what left). */
export interface RoundRow {
  federationId: string;
  round: number;
  accuracyBefore?: number;
  lossBefore?: number;
  accuracyAfter?: number;
  lossAfter?: number;
  backend?: string;
  uploadedBytes?: number;
  preClipNorm?: number;
  postClipNorm?: number;
  sigma?: number;
  uploadSha256?: string;
  uploadedAt?: number;
  trainLoss?: number;
  examplesPerSecond?: number;
  /** Why this round's release was not sent (the round closed before it was ready). */
  notSent?: string;
  /**
   * Epochs already done by a checkpoint when training of this round resumed (after a reload or a closed tab);
   * in a dp-sgd round, the steps already done.
   */
  resumedFromEpoch?: number;
}

/**
 * The local training of the round in progress, saved by the training worker at epoch boundaries so that a
 * reload, a closed tab or a crashed worker loses at most one epoch. At most one row per federation (saving
 * deletes the others); deleted in the transaction that records the round's release, and dropped when the
 * coordinator moved on. The weights are local weights: they never leave the browser, like the data.
 */
export interface CheckpointRow {
  federationId: string;
  round: number;
  /** The global model version the round trains from (round - 1): a checkpoint of another start is useless. */
  modelVersion: number;
  planHash: string;
  /** The dataset trained on; a new import starts the round over. */
  datasetId: string;
  /**
   * Epochs completed: training resumes at epoch + 1 of `epochs`. In a dp-sgd round (`mechanism`), steps
   * completed of the plan's steps per round.
   */
  epoch: number;
  epochs: number;
  /** "dp-sgd" when `epoch` counts DP-SGD steps; absent in site-update rounds (and rows made before DP-SGD). */
  mechanism?: "dp-sgd";
  /**
   * The plan's optimizer. Adam's and momentum's state is not saved: every fit starts a fresh optimizer by
   * design (workers/train/model.ts resetOptimizer), and a resumed round starts a fresh one at the saved epoch.
   */
  optimizer: Plan["training"]["optimizer"];
  /** All of the model's weights, flat (the plan's weight order), read with `await data()`. */
  weights: Float32Array;
  /** Training loss of the last batch before the checkpoint. */
  loss: number;
  savedAt: number;
}

/**
 * The privacy ledger: one row per release, written before its bytes leave, and kept. The bytes themselves
 * are kept until the coordinator accepts them, so that any retry of the round, even after a reload, sends
 * exactly this release again and never draws fresh noise (two noisy copies of one round would cost twice).
 */
export interface ReleaseRow {
  federationId: string;
  round: number;
  planHash: string;
  /**
   * The plan's noise multiplier z, clip norm C, noise std and power-of-two grid. Site-update rows: sigma = 2zC
   * on the whole update. dp-sgd rows: sigma = zC and the grid of each step's clipped sum, C per unit.
   */
  noiseMultiplier: number;
  clipNorm: number;
  sigma: number;
  grid: number;
  delta: number;
  /** "dp-sgd" for a DP-SGD round; absent: the site-update mechanism (every row made before DP-SGD). */
  mechanism?: "dp-sgd";
  /** dp-sgd rows: noised steps of the round, each unit's sampling rate q, and the site's units N then. */
  steps?: number;
  samplingRate?: number;
  units?: number;
  /** epsilon of all this site's releases in this federation up to and including this one, at delta. */
  epsilonAfter: number;
  /**
   * Norms at the site; the pre-clip norm never leaves (it depends on the data beyond the clipped delta). A
   * dp-sgd round clips per unit at each step, not the delta: both are the uploaded delta's norm.
   */
  preClipNorm: number;
  postClipNorm: number;
  /** Exactly what is uploaded (wire format), its size and SHA-256; the bytes are dropped once accepted. */
  body?: Uint8Array;
  bytes: number;
  sha256: string;
  createdAt: number;
  /** When the coordinator acknowledged it; "round closed" when it refused it because the round moved on. */
  sentAt?: number;
  refused?: string;
  /**
   * The coordinator's receipt for this release, as its reply or (when the reply was lost, or a refusal came
   * after the round moved on) its state route said: accepted, counted in which model version, or refused and
   * why. Updated when an accepted release is later counted. Absent in rows made before receipts.
   */
  receipt?: UploadReceipt;
  /** When the site's upload review (or, with review off, the page at once) let it go. */
  approvedAt?: number;
  /**
   * When the clinician chose "Do not send this round": the row stays (status "withheld"), its bytes are
   * dropped and it is never sent, and it does not count against the privacy budget: not sent, not released.
   */
  withheldAt?: number;
}

/**
 * One fact of a cohort import in progress (workers/import/cohort-import.ts), between its two passes; every
 * row of an import is deleted when it ends, fails or is cancelled. Nothing here identifies a patient:
 * `patient` is a sequential number that only the import worker's memory maps to a patient, every time is
 * shifted by a secret whole number of days per patient (kept in that memory only), and a fact's `id` is
 * an 8-hex-digit hash of the resource id, kept only to order facts of the same time the same way in
 * every import. Keyed [importId+patient+seq], so one patient's facts are one key range.
 */
export type StagingRow = {
  /** Random per import (crypto.randomUUID), not derived from the data. */
  importId: string;
  patient: number;
  /** Write order within the import. */
  seq: number;
} & StagedFact;

export type StagedFact =
  | { kind: "patient"; fact: PatientFact }
  | { kind: "death"; death: Span }
  | { kind: "observation"; fact: ObservationFact }
  | { kind: "condition"; fact: ConditionFact }
  | { kind: "encounter"; fact: EncounterFact }
  /** A problem of this patient's record (built from the spec and table names only); `rank` orders them. */
  | { kind: "problem"; message: string; rank: number };

export const SHARD_SIZE = 256;
export const MAX_PROBLEMS = 200;

export class FedwardDb extends Dexie {
  enrollments!: EntityTable<EnrollmentRow, "federationId">;
  datasets!: EntityTable<DatasetRow, "id">;
  shards!: EntityTable<ShardRow, "id">;
  rounds!: Dexie.Table<RoundRow, [string, number]>;
  releases!: Dexie.Table<ReleaseRow, [string, number]>;
  staging!: Dexie.Table<StagingRow, [string, number, number]>;
  checkpoints!: Dexie.Table<CheckpointRow, [string, number]>;

  constructor(name = "fedward") {
    super(name);
    this.version(1).stores({
      enrollments: "federationId",
      datasets: "id, federationId, status",
      shards: "++id, [datasetId+split+index], datasetId",
      rounds: "[federationId+round], federationId",
    });
    this.version(2).stores({ releases: "[federationId+round], federationId" });
    this.version(3).stores({ staging: "[importId+patient+seq]" });
    // Adds a table only: the rows of versions 1-3 stay as they are.
    this.version(4).stores({ checkpoints: "[federationId+round], federationId" });
  }
}

let shared: FedwardDb | undefined;
export function openDb(name?: string): FedwardDb {
  if (name !== undefined) return new FedwardDb(name);
  shared ??= new FedwardDb();
  return shared;
}
