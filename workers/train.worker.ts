import type * as tf from "@tensorflow/tfjs";
import { expose, transfer } from "comlink";
import { InputError } from "../src/core/errors";
import { dpSgdPrivacy, isDpSgd, type Plan, siteUpdateTraining } from "../src/core/plan";
import { type PrivatizedDelta, privatizeDelta } from "../src/core/privacy/mechanism";
import { subtract } from "../src/core/vector";
import { openDb, type Split } from "../src/store/db";
import { saveCheckpoint } from "../src/store/round-state";
import { countShards, readShard } from "./import/read-shards";
import { groupsByPatient } from "./import/units";
import { type BackendChoice, type BackendPreference, chooseBackend } from "./train/backends";
import { type DpSgdRelease, releaseDpSgd } from "./train/dp-sgd-release";
import { buildModel, disposeModel } from "./train/model";
import {
  type EvaluateOutcome,
  evaluate,
  type FitOutcome,
  type FitResume,
  fit,
  type ShardSource,
  type TrainProgress,
} from "./train/trainer";

let current: { plan: Plan; model: tf.LayersModel; choice: BackendChoice } | undefined;

function source(datasetId: string, split: Split): ShardSource {
  const db = openDb();
  const dataset = async () => {
    const row = await db.datasets.get(datasetId);
    if (row?.status !== "complete") {
      throw new InputError("The imported dataset is gone or incomplete; import the file again.");
    }
    return row;
  };
  return {
    async count() {
      const row = await dataset();
      return split === "train" ? row.numTrain : row.numHoldout;
    },
    // DP-SGD's N: units of the train split as the import counted them (imports before units: one per example).
    async units() {
      const row = await dataset();
      if (row.trainUnits === undefined && current && groupsByPatient(current.plan)) {
        // Rows of one patient would count as several: the guarantee would be per row, not per patient.
        throw new InputError(
          "The data were imported before fedward grouped them by patient, as this plan needs; import the file again.",
        );
      }
      return split === "train" ? (row.trainUnits ?? row.numTrain) : row.numHoldout;
    },
    shardCount: () => countShards(db, datasetId, split),
    shard: (index) => readShard(db, datasetId, split, index),
  };
}

function ready() {
  if (!current) throw new Error("The training worker was used before init(); this is a bug in fedward.");
  return current;
}

export type { DpSgdRelease } from "./train/dp-sgd-release";

/**
 * What fit hands to the page: the release and metrics, never the local weights. Site-update plans: the
 * clipped, noised delta (PrivatizedDelta). DP-SGD plans: the delta after the round's noised steps and what
 * the ledger records of them (DpSgdRelease, told apart by `mechanism: "dp-sgd"`).
 */
export interface FitRelease {
  numExamples: number;
  metrics: FitOutcome["metrics"];
  released: PrivatizedDelta | DpSgdRelease;
}

/**
 * Which round a fit trains, so that the worker checkpoints it to IndexedDB after every epoch (a dp-sgd
 * round: every tenth of its steps; src/store/round-state.ts), and, after a reload, the checkpoint it
 * continues from (`resume.epoch`: epochs or steps done).
 */
export interface FitCheckpoint {
  federationId: string;
  round: number;
  modelVersion: number;
  planHash: string;
  resume?: FitResume;
}

const api = {
  /** Picks the backend (by measurement unless forced) and builds the plan's model on it. */
  async init(plan: Plan, preference: BackendPreference): Promise<BackendChoice> {
    if (current) disposeModel(current.model);
    current = undefined;
    const choice = await chooseBackend(plan, preference);
    const model = await buildModel(plan);
    current = { plan, model, choice };
    return choice;
  },

  /**
   * Flower-style fit, then the privacy mechanism of src/core on float32 copies of the weights (never on
   * webgpu tensors): delta = local - global, clipped, rounded, discrete Gaussian noise. Noising runs here,
   * off the page's main thread. A dp-sgd plan noises every step instead (workers/train/dp-sgd.ts) and its
   * delta leaves as it is. With `checkpoint`, each completed epoch (dp-sgd: tenth of the steps) is saved
   * (awaited, so a progress event of epoch e + 1 means epoch e is on disk) and training may resume from it;
   * the delta is always taken against `global`, the round's starting model.
   */
  async fit(
    global: Float32Array,
    datasetId: string,
    onProgress: (p: TrainProgress) => void,
    checkpoint?: FitCheckpoint,
  ): Promise<FitRelease> {
    const { plan, model } = ready();
    const dpSgd = isDpSgd(plan);
    const onEpoch = checkpoint
      ? (epoch: number, weights: Float32Array, loss: number) =>
          saveCheckpoint(openDb(), {
            federationId: checkpoint.federationId,
            round: checkpoint.round,
            modelVersion: checkpoint.modelVersion,
            planHash: checkpoint.planHash,
            datasetId,
            epoch,
            epochs: dpSgd ? dpSgdPrivacy(plan).stepsPerRound : siteUpdateTraining(plan).epochs,
            ...(dpSgd ? { mechanism: "dp-sgd" as const } : {}),
            optimizer: plan.training.optimizer,
            weights,
            loss,
            savedAt: Date.now(),
          })
      : undefined;
    const train = source(datasetId, "train");
    if (dpSgd) {
      const resume = checkpoint?.resume;
      const options = { ...(resume ? { resume } : {}), ...(onEpoch ? { onCheckpoint: onEpoch } : {}) };
      const result: FitRelease = await releaseDpSgd(plan, global, train, onProgress, options);
      return transfer(result, [result.released.delta.buffer]);
    }
    const out = await fit(model, plan, global, train, onProgress, checkpoint?.resume, onEpoch);
    const released = privatizeDelta(subtract(out.weights, global), plan.privacy);
    const result: FitRelease = { numExamples: out.numExamples, metrics: out.metrics, released };
    return transfer(result, [released.delta.buffer]);
  },

  async evaluate(weights: Float32Array, datasetId: string): Promise<EvaluateOutcome> {
    const { plan, model } = ready();
    return evaluate(model, plan, weights, source(datasetId, "holdout"));
  },
};

export type TrainWorkerApi = typeof api;
expose(api);
