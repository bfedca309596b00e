import * as tf from "@tensorflow/tfjs";
import { InputError } from "../../src/core/errors";
import { inputShape, inputWidth, type Plan, siteUpdateTraining } from "../../src/core/plan";
import { CryptoRandom } from "../../src/core/random";
import { readWeights, resetOptimizer, writeWeights } from "./model";

/** Where examples come from: shards of many examples each, read one at a time (IndexedDB in the app). */
export interface ExampleShard {
  count: number;
  x: Float32Array;
  y: Float32Array;
  /** Per example, its unit (patient) number (src/store/db.ts ShardRow.unit); absent: each example its own. */
  unit?: Uint32Array | undefined;
}
export interface ShardSource {
  count(): Promise<number>;
  shardCount(): Promise<number>;
  shard(index: number): Promise<ExampleShard>;
  /** Units (patients) in the split, as the import counted them (DatasetRow.trainUnits); absent: count(). */
  units?(): Promise<number>;
}

/**
 * Progress of a round's local training. Site-update plans: epochs of batches. DP-SGD plans also set `step`
 * and `steps`, and fill the epoch fields so that a view written for epochs still shows the right fraction
 * and time left: epoch = step, epochs = steps, batch = batches = 1.
 */
export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  examplesPerSecond: number;
  /** DP-SGD only: noised steps done of this round's steps (epoch and epochs repeat them). */
  step?: number;
  steps?: number;
  /** DP-SGD only: examples of the sampled units in this step (Poisson: varies around the expected batch). */
  batchExamples?: number;
  /** DP-SGD only: the round's time left at the mean time per step so far (batches vary, so does speed). */
  secondsLeft?: number;
}

export interface FitOutcome {
  weights: Float32Array;
  numExamples: number;
  metrics: { loss: number; examplesPerSecond: number; seconds: number };
}

export interface EvaluateOutcome {
  loss: number;
  accuracy: number;
  numExamples: number;
}

/** A shard written for another plan (another feature count) must not be trained on as if it fit. */
export function checkWidth(shard: ExampleShard, dim: number): ExampleShard {
  if (shard.x.length !== shard.count * dim || shard.y.length !== shard.count) {
    throw new InputError(
      `A stored shard holds ${shard.x.length / Math.max(1, shard.count)} features per example but the plan has ${dim}; import the file again.`,
    );
  }
  return shard;
}

function shuffle<T>(items: T[], rng: CryptoRandom): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.uniformInt(i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/**
 * Streams batches: shards are fetched one at a time in a shuffled order and examples are shuffled within
 * each shard, so memory holds one shard plus one batch whatever the dataset size.
 */
async function* batches(source: ShardSource, dim: number, batchSize: number, rng: CryptoRandom) {
  const order = shuffle(
    Array.from({ length: await source.shardCount() }, (_, i) => i),
    rng,
  );
  const bx = new Float32Array(batchSize * dim);
  const by = new Float32Array(batchSize);
  let filled = 0;
  for (const index of order) {
    const shard = checkWidth(await source.shard(index), dim);
    const within = shuffle(
      Array.from({ length: shard.count }, (_, i) => i),
      rng,
    );
    for (const i of within) {
      bx.set(shard.x.subarray(i * dim, (i + 1) * dim), filled * dim);
      by[filled] = shard.y[i] as number;
      if (++filled === batchSize) {
        yield { x: bx.slice(), y: by.slice(), n: filled };
        filled = 0;
      }
    }
  }
  if (filled > 0) yield { x: bx.slice(0, filled * dim), y: by.slice(0, filled), n: filled };
}

/**
 * Where a fit resumes: the weights after `epoch` completed epochs of this round (a dp-sgd fit: steps), and
 * the loss then.
 */
export interface FitResume {
  epoch: number;
  weights: Float32Array;
  loss: number;
}

/**
 * Called after each completed epoch (a dp-sgd fit: every tenth of its steps) with a copy of the weights;
 * training waits for it (a checkpoint write).
 */
export type EpochDone = (epoch: number, weights: Float32Array, loss: number) => Promise<void>;

/**
 * Flower-style fit: start from the global weights, train the plan's local epochs, return local weights.
 * With `resume`, training starts from its weights at epoch resume.epoch + 1 with a fresh optimizer (Adam's
 * moments are not checkpointed; they re-warm within a few steps).
 */
export async function fit(
  model: tf.LayersModel,
  plan: Plan,
  global: Float32Array,
  source: ShardSource,
  onProgress: (p: TrainProgress) => void,
  resume?: FitResume,
  onEpoch?: EpochDone,
): Promise<FitOutcome> {
  writeWeights(model, plan, resume?.weights ?? global);
  resetOptimizer(model, plan);
  const dim = inputWidth(plan);
  const shape = inputShape(plan);
  const { epochs, batchSize } = siteUpdateTraining(plan);
  const numExamples = await source.count();
  if (numExamples === 0)
    throw new InputError("There are no training examples: import data before joining training.");
  const batchesPerEpoch = Math.ceil(numExamples / batchSize);
  const rng = new CryptoRandom();
  const start = performance.now();
  let seen = 0;
  let lastLoss = resume?.loss ?? Number.NaN;
  for (let epoch = (resume?.epoch ?? 0) + 1; epoch <= epochs; epoch++) {
    let batch = 0;
    for await (const b of batches(source, dim, batchSize, rng)) {
      // Examples are stored flat; a CNN takes each as [height, width, channels].
      const x = tf.tensor(b.x, [b.n, ...shape]);
      const y = tf.tensor2d(b.y, [b.n, 1]);
      try {
        lastLoss = (await model.trainOnBatch(x, y)) as number;
      } finally {
        tf.dispose([x, y]);
      }
      batch++;
      seen += b.n;
      const seconds = (performance.now() - start) / 1000;
      onProgress({
        epoch,
        epochs,
        batch,
        batches: batchesPerEpoch,
        loss: lastLoss,
        examplesPerSecond: seen / seconds,
      });
    }
    if (onEpoch) await onEpoch(epoch, await readWeights(model), lastLoss);
  }
  const seconds = (performance.now() - start) / 1000;
  const weights = await readWeights(model);
  const examplesPerSecond = seen > 0 ? seen / seconds : 0;
  return { weights, numExamples, metrics: { loss: lastLoss, examplesPerSecond, seconds } };
}

/** Flower-style evaluate: binary cross-entropy and accuracy (threshold 0.5) on the held-out split. */
export async function evaluate(
  model: tf.LayersModel,
  plan: Plan,
  weights: Float32Array,
  source: ShardSource,
): Promise<EvaluateOutcome> {
  writeWeights(model, plan, weights);
  const dim = inputWidth(plan);
  let n = 0;
  let correct = 0;
  let lossSum = 0;
  const shards = await source.shardCount();
  for (let index = 0; index < shards; index++) {
    const shard = checkWidth(await source.shard(index), dim);
    const x = tf.tensor(shard.x, [shard.count, ...inputShape(plan)]);
    let probs: Float32Array;
    try {
      const p = model.predict(x) as tf.Tensor;
      try {
        probs = (await p.data()) as Float32Array;
      } finally {
        p.dispose();
      }
    } finally {
      x.dispose();
    }
    for (let i = 0; i < shard.count; i++) {
      const y = shard.y[i] as number;
      const q = Math.min(Math.max(probs[i] as number, 1e-7), 1 - 1e-7);
      lossSum += -(y * Math.log(q) + (1 - y) * Math.log(1 - q));
      if ((q >= 0.5 ? 1 : 0) === y) correct++;
    }
    n += shard.count;
  }
  if (n === 0) throw new InputError("There are no held-out examples to evaluate on: import more rows.");
  return { loss: lossSum / n, accuracy: correct / n, numExamples: n };
}
