import * as tf from "@tensorflow/tfjs";
import { expose, transfer } from "comlink";
import type { Plan } from "../src/core/plan";
import { openDb, type Split } from "../src/store/db";
import { countShards, readShard } from "./import/read-shards";
import { type BackendChoice, type BackendPreference, chooseBackend } from "./train/backends";
import { buildModel } from "./train/model";
import {
  type EvaluateOutcome,
  evaluate,
  type FitOutcome,
  fit,
  type ShardSource,
  type TrainProgress,
} from "./train/trainer";

let current: { plan: Plan; model: tf.LayersModel; choice: BackendChoice } | undefined;
const cancel = { aborted: false };

function source(datasetId: string, split: Split): ShardSource {
  const db = openDb();
  return {
    async count() {
      const row = await db.datasets.get(datasetId);
      if (row?.status !== "complete") {
        throw new Error("The imported dataset is gone or incomplete; import the file again.");
      }
      return split === "train" ? row.numTrain : row.numHoldout;
    },
    shardCount: () => countShards(db, datasetId, split),
    shard: (index) => readShard(db, datasetId, split, index),
  };
}

function ready() {
  if (!current) throw new Error("The training worker was used before init(); this is a bug in fedward.");
  return current;
}

const api = {
  /** Picks the backend (by measurement unless forced) and builds the plan's model on it. */
  async init(plan: Plan, preference: BackendPreference): Promise<BackendChoice> {
    current?.model.dispose();
    current = undefined;
    const choice = await chooseBackend(plan, preference);
    const model = await buildModel(plan);
    current = { plan, model, choice };
    return choice;
  },

  async fit(
    global: Float32Array,
    datasetId: string,
    onProgress: (p: TrainProgress) => void,
  ): Promise<FitOutcome> {
    const { plan, model } = ready();
    cancel.aborted = false;
    const out = await fit(model, plan, global, source(datasetId, "train"), onProgress, cancel);
    return transfer(out, [out.weights.buffer]);
  },

  async evaluate(weights: Float32Array, datasetId: string): Promise<EvaluateOutcome> {
    const { plan, model } = ready();
    return evaluate(model, plan, weights, source(datasetId, "holdout"));
  },

  cancel(): void {
    cancel.aborted = true;
  },

  backend(): string {
    return tf.getBackend();
  },
};

export type TrainWorkerApi = typeof api;
expose(api);
