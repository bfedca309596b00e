/**
 * `npx tsx test/bench/dp-accuracy.ts` (part of `npm run bench`): what the WDBC demo plan's DP-SGD reaches,
 * as a mean over seeds and data splits rather than one lucky run. The same training code as a site's worker
 * (workers/train/dp-sgd.ts fitDpSgd: Poisson sampling, per-row clipping, discrete Gaussian noise from
 * crypto.getRandomValues, the plan's optimizer) on tfjs's cpu backend in Node, and the coordinator's
 * strategy (FedAvgUnweighted). For each seed the 569 WDBC rows of public/demo/wdbc-site{1,2,3}.csv are
 * shuffled, 20% held out, and the rest dealt evenly to 2 or 3 sites. The noise multiplier is calibrated to
 * ε = 1 and ε = 3 per row over the whole plan (δ = 1e-5) with the product's accountant; the plan's other
 * settings are the demo's. Prints mean ± sd of held-out accuracy per (sites, ε), with each site alone (same
 * ε, its own data only) and no privacy at all for comparison. BENCH_SEEDS overrides the number of seeds.
 */
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initialWeights } from "../../src/core/model-format";
import { dpSgdPrivacy, inputWidth, type Plan, parsePlan } from "../../src/core/plan";
import { INTEGER_RDP_ORDERS, noiseMultiplierForEpsilon } from "../../src/core/privacy/accounting";
import { planPrivacy } from "../../src/core/privacy/budget";
import { FedAvgUnweighted } from "../../src/core/strategy";
import { importCsv } from "../../workers/import/csv";
import { fitDpSgd } from "../../workers/train/dp-sgd";
import { forwardLogits } from "../../workers/train/per-example";
import type { ShardSource } from "../../workers/train/trainer";

const SEEDS = Number(process.env.BENCH_SEEDS ?? 10);
const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
const dim = inputWidth(demo);

/** Every row of the three demo CSVs, as the site's import encodes them. */
async function allRows(): Promise<{ x: Float32Array[]; y: number[] }> {
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (const k of [1, 2, 3]) {
    const text = readFileSync(`public/demo/wdbc-site${k}.csv`, "utf8");
    const sink = {
      add(row: Float32Array, label: 0 | 1) {
        x.push(Float32Array.from(row));
        y.push(label);
      },
      problem() {},
    };
    await importCsv(text, demo, sink, { fileName: `wdbc-site${k}.csv` });
  }
  return { x, y };
}

/** A seeded shuffle for the data splits only (mulberry32): never used for anything privacy-related. */
function shuffled(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

/** A fake of the site's IndexedDB shards (the surrounding store), holding the given rows in one shard. */
function memorySource(rows: { x: Float32Array[]; y: number[] }, picks: number[]): ShardSource {
  const x = new Float32Array(picks.length * dim);
  const y = new Float32Array(picks.length);
  picks.forEach((r, i) => {
    x.set(rows.x[r] as Float32Array, i * dim);
    y[i] = rows.y[r] as number;
  });
  return {
    count: async () => picks.length,
    shardCount: async () => 1,
    shard: async () => ({ count: picks.length, x, y }),
  };
}

async function accuracy(
  plan: Plan,
  weights: Float32Array,
  rows: { x: Float32Array[]; y: number[] },
  picks: number[],
) {
  const x = new Float32Array(picks.length * dim);
  picks.forEach((r, i) => {
    x.set(rows.x[r] as Float32Array, i * dim);
  });
  const logits = tf.tidy(() => forwardLogits(plan, weights, tf.tensor2d(x, [picks.length, dim])));
  const values = await logits.data();
  logits.dispose();
  let correct = 0;
  picks.forEach((r, i) => {
    if (((values[i] as number) >= 0 ? 1 : 0) === rows.y[r]) correct++;
  });
  return correct / picks.length;
}

function plus(a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (v, i) => v + (b[i] as number));
}

/** Rounds of the plan: each site (or the one "alone" site) trains from the global model, FedAvg combines. */
async function federate(plan: Plan, sources: ShardSource[]): Promise<Float32Array> {
  let global = initialWeights(plan);
  const strategy = new FedAvgUnweighted();
  for (let round = 1; round <= plan.rounds; round++) {
    const results = [];
    for (const [k, source] of sources.entries()) {
      const out = await fitDpSgd(plan, global, source, () => {});
      results.push({
        siteId: `site-${k + 1}`,
        delta: plus(
          out.weights,
          global.map((v) => -v),
        ),
        numExamples: 0,
      });
    }
    global = strategy.aggregateFit(round, global, results, []).parameters;
  }
  return global;
}

function withEpsilon(target: number): Plan {
  const p = dpSgdPrivacy(demo);
  const noiseMultiplier = noiseMultiplierForEpsilon({
    targetEpsilon: target,
    steps: demo.rounds * p.stepsPerRound,
    delta: p.delta,
    samplingRate: p.samplingRate ?? 1,
    orders: INTEGER_RDP_ORDERS,
  });
  return { ...demo, privacy: { ...demo.privacy, noiseMultiplier, epsilonBudget: target } };
}

function meanSd(xs: number[]): string {
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${mean.toFixed(3)} ± ${sd.toFixed(3)}`;
}

await tf.setBackend("cpu");
const rows = await allRows();
const p = dpSgdPrivacy(demo);
console.log(
  `bench dp-accuracy: WDBC ${rows.y.length} rows, ${SEEDS} seeds, plan ${demo.rounds} rounds × ${p.stepsPerRound} steps, ` +
    `q=${p.samplingRate}, C=${p.clipNorm}, ${demo.training.optimizer} lr=${demo.training.learningRate}; demo z=${p.noiseMultiplier}`,
);
for (const target of [1, 3]) {
  const plan = withEpsilon(target);
  const epsilon = planPrivacy(plan, 100).epsilonAllRounds;
  for (const sites of [2, 3]) {
    const federated: number[] = [];
    const alone: number[] = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const order = shuffled(rows.y.length, 1000 + seed);
      const holdout = order.slice(0, Math.round(0.2 * order.length));
      const train = order.slice(holdout.length);
      const parts = Array.from({ length: sites }, (_, k) => train.filter((_, i) => i % sites === k));
      const sources = parts.map((picks) => memorySource(rows, picks));
      federated.push(await accuracy(plan, await federate(plan, sources), rows, holdout));
      alone.push(await accuracy(plan, await federate(plan, [sources[0] as ShardSource]), rows, holdout));
    }
    console.log(
      `bench dp-accuracy sites=${sites} epsilon=${epsilon.toFixed(3)} z=${plan.privacy.noiseMultiplier}: ` +
        `federated ${meanSd(federated)}, site 1 alone ${meanSd(alone)}` +
        (target === 3 ? " (target: federated mean ≥ 0.95)" : ""),
    );
  }
}
