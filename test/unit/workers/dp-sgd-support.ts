import { type Plan, parsePlan } from "../../../src/core/plan";
import type { ExampleShard, ShardSource } from "../../../workers/train/trainer";

/** A dp-sgd plan of `features` number inputs and an MLP (hidden [] is logistic regression). */
export function dpSgdPlan(
  options: {
    features?: number;
    hidden?: number[];
    learningRate?: number;
    optimizer?: "sgd" | "momentum" | "adam";
    privacy?: Record<string, unknown>;
  } = {},
): Plan {
  const features = options.features ?? 3;
  return parsePlan({
    id: "dp-sgd-test",
    title: "DP-SGD test",
    features: Array.from({ length: features }, (_, i) => ({
      name: `f${i}`,
      column: `c${i}`,
      type: "number",
      mean: 0,
      std: 1,
    })),
    label: { column: "y", positive: "yes", negative: "no" },
    model: { type: "mlp", hidden: options.hidden ?? [], activation: "tanh" },
    training: { optimizer: options.optimizer ?? "sgd", learningRate: options.learningRate ?? 0.5 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1,
      noiseMultiplier: 1,
      delta: 1e-5,
      epsilonBudget: 1000,
      stepsPerRound: 1,
      samplingRate: 1,
      ...options.privacy,
    },
    rounds: 1,
    minSites: 1,
  });
}

export interface Example {
  x: number[];
  y: 0 | 1;
  /** The stored unit number (ShardRow.unit); all examples of a source have one, or none has. */
  unit?: number;
}

/**
 * A FAKE of the surrounding store: in-memory shards standing in for the IndexedDB shards of an import (the
 * worker-level tests and the browser e2e read the real ones). Records every shard read.
 */
export function fakeShardSource(
  examples: Example[],
  shardSize: number,
  units?: number,
): ShardSource & { reads: number[] } {
  const width = examples[0]?.x.length ?? 0;
  const shards: ExampleShard[] = [];
  for (let first = 0; first < examples.length; first += shardSize) {
    const part = examples.slice(first, first + shardSize);
    const shard: ExampleShard = {
      count: part.length,
      x: Float32Array.from(part.flatMap((e) => e.x)),
      y: Float32Array.from(part, (e) => e.y),
    };
    if (part[0]?.unit !== undefined) shard.unit = Uint32Array.from(part, (e) => e.unit as number);
    shards.push(shard);
  }
  if (shards.some((s) => s.x.length !== s.count * width)) throw new Error("ragged test examples");
  const reads: number[] = [];
  return {
    reads,
    count: async () => examples.length,
    shardCount: async () => shards.length,
    shard: async (i) => {
      reads.push(i);
      return shards[i] as ExampleShard;
    },
    ...(units !== undefined ? { units: async () => units } : {}),
  };
}

/** Deterministic examples: features from sines (scaled by `scale`), label from their sign pattern. */
export function examplesOf(count: number, width: number, scale = 1): Example[] {
  return Array.from({ length: count }, (_, k) => {
    const x = Array.from({ length: width }, (_, j) => scale * Math.sin(k * 1.7 + j * 2.3 + 0.4));
    const y = (x.reduce((a, b, j) => a + (j % 2 ? -b : b), 0) > 0 ? 1 : 0) as 0 | 1;
    return { x, y };
  });
}

/**
 * Logistic regression's per-example gradient of BCE(sigmoid(w.x + b), y), written out by hand as the naive
 * reference: (sigmoid(z) - y) * [x, 1], in the plan's weight order (kernel, then bias).
 */
export function logisticGradient(weights: Float32Array, e: Example): Float64Array {
  const d = e.x.length;
  let z = weights[d] as number;
  for (let j = 0; j < d; j++) z += (weights[j] as number) * (e.x[j] as number);
  const r = 1 / (1 + Math.exp(-z)) - e.y;
  const g = new Float64Array(d + 1);
  for (let j = 0; j < d; j++) g[j] = r * (e.x[j] as number);
  g[d] = r;
  return g;
}

/** Clips g to norm `clip` (scaled to clip * safety when over it), as DP-SGD clips one unit. */
export function clipTo(g: Float64Array, clip: number, safety: number): Float64Array {
  const norm = Math.hypot(...g);
  const factor = norm > clip ? (clip * safety) / norm : 1;
  return g.map((v) => v * factor);
}

export function addInto(into: Float64Array, g: Float64Array): void {
  for (let i = 0; i < into.length; i++) into[i] = (into[i] as number) + (g[i] as number);
}
