/**
 * `npm run bench`: speed of the core's hot paths in Node, as medians over repeated runs (these machines are
 * noisy: compare medians and ratios, not single runs). Browser training throughput per backend is measured
 * by the app itself (workers/train/backends.ts) and printed by the e2e auto-backend test.
 */
import { discreteGaussianTable, sampleDiscreteGaussian } from "../../src/core/privacy/cdt";
import { discreteGaussian } from "../../src/core/privacy/discrete-gaussian";
import { privatizeDelta } from "../../src/core/privacy/mechanism";
import { CryptoRandom } from "../../src/core/random";
import { FedAvgUnweighted } from "../../src/core/strategy";
import { decodeVector, encodeVector, WireKind } from "../../src/core/wire";
import { timeMs } from "./timing";

function vector(n: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i) * 0.01;
  return v;
}

const privacy = { clipNorm: 2, noiseMultiplier: 0.5, delta: 1e-5 };
for (const n of [257, 100_000]) {
  const v = vector(n);
  const ms = await timeMs(5, () => privatizeDelta(v, privacy));
  console.log(
    `bench privatize n=${n}: median ${ms.toFixed(1)} ms, ${Math.round((n / ms) * 1000)} noise samples/s`,
  );
}

// The two discrete Gaussian samplers alone, at the mechanism's scale (s = sigma / grid = 1536.5).
{
  const rng = new CryptoRandom();
  const table = discreteGaussianTable(3073n * 3073n, 4n);
  const out = new Int32Array(1_000_000);
  const tableMs = await timeMs(7, () => sampleDiscreteGaussian(table, rng, out));
  const exactDraws = 20_000;
  const exactMs = await timeMs(3, () => {
    for (let i = 0; i < exactDraws; i++) discreteGaussian(rng, 3073n * 3073n, 4n);
  });
  const tableRate = (out.length / tableMs) * 1000;
  const exactRate = (exactDraws / exactMs) * 1000;
  console.log(
    `bench discrete Gaussian s=1536.5: table ${Math.round(tableRate)} samples/s, exact (CKS rejection) ` +
      `${Math.round(exactRate)} samples/s, ratio ${(tableRate / exactRate).toFixed(1)}`,
  );
}

const big = vector(1_000_000);
const encMs = await timeMs(7, () =>
  encodeVector({ kind: WireKind.update, round: 1, numExamples: 0, values: big }),
);
const bytes = encodeVector({ kind: WireKind.update, round: 1, numExamples: 0, values: big });
const decMs = await timeMs(7, () => decodeVector(bytes, { kind: WireKind.update, count: big.length }));
console.log(
  `bench wire n=1e6: encode median ${encMs.toFixed(1)} ms (${(4 / encMs).toFixed(2)} GB/s), decode median ${decMs.toFixed(1)} ms`,
);

const strategy = new FedAvgUnweighted();
const results = Array.from({ length: 10 }, (_, k) => ({
  siteId: `s${k}`,
  delta: vector(1_000_000),
  numExamples: 0,
}));
const aggMs = await timeMs(5, () => strategy.aggregateFit(1, big, results, []));
console.log(`bench fedavg 10 sites x 1e6 weights: median ${aggMs.toFixed(1)} ms`);
