import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { importCsv } from "../../workers/import/csv";
import type { UnitKey } from "../../workers/import/units";
import { fitDpSgd } from "../../workers/train/dp-sgd";
import { forwardLogits } from "../../workers/train/per-example";
import type { ExampleShard, ShardSource } from "../../workers/train/trainer";
import { InputError } from "../core/errors";
import { initialWeights } from "../core/model-format";
import { inputWidth, isDpSgd, type Plan, parsePlan } from "../core/plan";
import { auditScores } from "../core/privacy/audit";
import { planPrivacy } from "../core/privacy/budget";
import { dpSgdSchedule } from "../core/privacy/dp-sgd";
import { CryptoRandom } from "../core/random";
import { type CliResult, formatNumber, USAGE_ERROR } from "./privacy";

/**
 * `fedward audit`: the one-run privacy audit (Steinke, Nasr, Jagielski 2023; src/core/privacy/audit.ts) of
 * the real DP-SGD trainer (workers/train/dp-sgd.ts) on a site's own CSV data, in Node on tfjs's cpu backend.
 *
 * Canaries, chosen for power: a DP-SGD step moves the model by at most C / (qN) per unit, so a canary is
 * only visible if little else moves its loss. Each canary is an input far outside the data (+-10 on one
 * model input, zeros elsewhere; every (input, sign) pair once while m <= 2 x inputs, so the canaries' first
 * layer gradients are orthogonal and, through the ReLUs, touch disjoint weights), labelled against what a
 * reference model says there, so its gradient stays large and gets clipped to C at every step it is sampled.
 * The reference model is the plan trained on the real rows alone from the same initial weights; the score
 * is a canary's loss under the reference minus its loss under the audited model, which cancels what the
 * real rows teach and leaves the canary's own pull. The reference run and the canaries never depend on
 * the coins, so the theorem applies to the guesses unchanged. Real rows with flipped labels, tried first
 * in a numpy replica, gave no bound above 0 even without noise: their loss varies more from row to row
 * than one row's inclusion changes it.
 */
export const AUDIT_USAGE = `Usage: fedward audit --plan PLAN.json [--canaries M] [--noise-multiplier Z] DATA.csv...

Trains the plan's model by DP-SGD, as one site for all of the plan's rounds, on the CSV files plus M
canaries (each included on a fair coin; default 2 x the model's inputs), guesses from the trained model
which canaries were included, and prints
  epsilon_lower_bound=<x>   what the guesses prove at 95% confidence: training is not (x, delta)-DP
  epsilon_proven=<eps>      what the accountant proves for the plan (it must not be below x)
--noise-multiplier Z trains with noise multiplier Z instead of the plan's (e.g. 1e-4 to check that the
audit can see a canary at all); such a run is not private. Needs a dp-sgd plan on CSV files.
Exits with 1 when the plan or the data cannot be used, 2 on a usage error.
`;

/** Confidence 1 - beta of the printed bound. */
const BETA = 0.05;
/** Canary inputs sit this many plan standard deviations from the mean, far outside any real row. */
const CANARY_MAGNITUDE = 10;
const SHARD_EXAMPLES = 512;
const CSV_NAME = /\.(csv|tsv|txt)$/i;

class UsageError extends Error {}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new InputError(`Cannot read ${what} ${path} (${(e as Error).message}); check the path.`);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(
      `The plan ${path} is not JSON (${(e as Error).message}); give the plan file itself.`,
    );
  }
}

interface Flags {
  plan: string;
  files: string[];
  canaries?: number;
  noiseMultiplier?: number;
}

function parse(argv: string[]): Flags | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      plan: { type: "string" },
      canaries: { type: "string" },
      "noise-multiplier": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (values.help) return "help";
  if (!values.plan) throw new UsageError("--plan is required: give the federation's plan JSON file.");
  if (positionals.length === 0) throw new UsageError("give at least one CSV file of the site's data.");
  const flags: Flags = { plan: values.plan, files: positionals };
  if (values.canaries !== undefined) {
    const m = Number(values.canaries);
    if (!(Number.isSafeInteger(m) && m >= 10 && m <= 100_000))
      throw new UsageError(`--canaries must be a whole number from 10 to 100000, got "${values.canaries}".`);
    flags.canaries = m;
  }
  const z = values["noise-multiplier"];
  if (z !== undefined) {
    const x = z.trim() === "" ? Number.NaN : Number(z);
    if (!(Number.isFinite(x) && x > 0))
      throw new UsageError(`--noise-multiplier must be a number above 0, e.g. 1e-4, got "${z}".`);
    flags.noiseMultiplier = x;
  }
  return flags;
}

/** Examples as the trainer reads them: flat model inputs, 0/1 labels, and unit numbers where rows group. */
interface Examples {
  x: Float32Array;
  y: Float32Array;
  unit?: Uint32Array | undefined;
}

interface SiteRows extends Examples {
  units: number;
  /** Rows the import left out (a bad or missing cell), as `fedward inspect` reports them. */
  skipped: number;
}

async function readRows(plan: Plan, files: string[]): Promise<SiteRows> {
  const x: number[] = [];
  const y: number[] = [];
  // Where the plan groups rows by patient, each row's unit number; a row without a key is a unit of its own.
  const unit: number[] | undefined = plan.csv?.patientColumn !== undefined ? [] : undefined;
  const numbers = new Map<UnitKey, number>();
  let units = 0;
  let skipped = 0;
  for (const file of files) {
    if (!CSV_NAME.test(file))
      throw new InputError(
        `${file} is not a CSV file (.csv, .tsv or .txt); fedward audit reads CSV exports.`,
      );
    const sink = {
      add(row: Float32Array, label: 0 | 1, _line: number, key?: UnitKey) {
        for (const v of row) x.push(v);
        y.push(label);
        if (!unit) return;
        let u = key === undefined ? undefined : numbers.get(key);
        if (u === undefined) {
          u = units++;
          if (key !== undefined) numbers.set(key, u);
        }
        unit.push(u);
      },
      problem() {},
    };
    const text = readText(file, "the data file");
    skipped += (await importCsv(text, plan, sink, { fileName: basename(file) })).rowsSkipped;
  }
  if (y.length === 0) throw new InputError("None of the files has a row this plan can use.");
  if (!unit) units = y.length;
  return {
    x: Float32Array.from(x),
    y: Float32Array.from(y),
    unit: unit && Uint32Array.from(unit),
    units,
    skipped,
  };
}

/** The examples as shards, as the trainer reads them from IndexedDB in the app. */
function source(dim: number, { x, y, unit }: Examples): ShardSource {
  const count = y.length;
  const shards = Math.ceil(count / SHARD_EXAMPLES);
  return {
    count: async () => count,
    shardCount: async () => shards,
    units: async () => (unit ? new Set(unit).size : count),
    shard: async (s): Promise<ExampleShard> => {
      const [from, to] = [s * SHARD_EXAMPLES, Math.min(count, (s + 1) * SHARD_EXAMPLES)];
      return {
        count: to - from,
        x: x.slice(from * dim, to * dim),
        y: y.slice(from, to),
        unit: unit?.slice(from, to),
      };
    },
  };
}

/** The site's rows and, after them, the canaries whose coin came up "in", each a unit of its own. */
function withCanaries(dim: number, rows: SiteRows, canaries: Examples, included: boolean[]): Examples {
  const picked = included.flatMap((inside, i) => (inside ? [i] : []));
  const n = rows.y.length + picked.length;
  const out: Examples = { x: new Float32Array(n * dim), y: new Float32Array(n) };
  out.x.set(rows.x);
  out.y.set(rows.y);
  if (rows.unit) {
    out.unit = new Uint32Array(n);
    out.unit.set(rows.unit);
  }
  picked.forEach((i, j) => {
    const k = rows.y.length + j;
    out.x.set(canaries.x.subarray(i * dim, (i + 1) * dim), k * dim);
    out.y[k] = canaries.y[i] as number;
    if (out.unit) out.unit[k] = rows.units + j;
  });
  return out;
}

/** All of the plan's rounds at one site: with one site, each round's global model is that site's. */
async function trainAllRounds(
  plan: Plan,
  global: Float32Array,
  data: ShardSource,
  rng: CryptoRandom,
): Promise<Float32Array> {
  let weights = global;
  for (let round = 0; round < plan.rounds; round++) {
    weights = (await fitDpSgd(plan, weights, data, () => {}, { rng })).weights;
  }
  return weights;
}

/** BCE of each canary from its logit, in float64: softplus(z) - y z, which a sigmoid output would saturate. */
async function losses(
  plan: Plan,
  weights: Float32Array,
  x: Float32Array,
  y: Float32Array,
): Promise<number[]> {
  const input = tf.tensor2d(x, [y.length, inputWidth(plan)]);
  const out = forwardLogits(plan, weights, input);
  const logits = await out.data();
  tf.dispose([input, out]);
  return Array.from(y, (label, i) => {
    const z = logits[i] as number;
    return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - label * z;
  });
}

/** Canary i: +-CANARY_MAGNITUDE on one input, each (input, sign) pair once per shuffled pass. */
function canaryInputs(m: number, dim: number, rng: CryptoRandom): Float32Array {
  const x = new Float32Array(m * dim);
  const pairs = 2 * dim;
  for (let start = 0; start < m; start += pairs) {
    const order = Array.from({ length: pairs }, (_, i) => i);
    for (let i = pairs - 1; i > 0; i--) {
      const j = rng.uniformInt(i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    for (let i = start; i < Math.min(m, start + pairs); i++) {
      const pair = order[i - start] as number;
      x[i * dim + (pair % dim)] = pair < dim ? CANARY_MAGNITUDE : -CANARY_MAGNITUDE;
    }
  }
  return x;
}

/**
 * The plan audited: the flag's noise multiplier, and a fixed q. With expectedBatchSize B the trainer would
 * set q = B / N from the realised N, so a canary's coin would change every unit's q; the theorem needs one
 * mechanism whichever canaries are in, so q is fixed at B over the expected N instead.
 */
function auditedPlan(plan: Plan, realUnits: number, m: number, z?: number): Plan {
  const { expectedBatchSize: _, ...privacy } = plan.privacy;
  const { samplingRate } = dpSgdSchedule(plan, realUnits + Math.round(m / 2));
  return { ...plan, privacy: { ...privacy, samplingRate, noiseMultiplier: z ?? privacy.noiseMultiplier } };
}

async function audit(flags: Flags, rng: CryptoRandom): Promise<string[]> {
  const plan = parsePlan(parseJson(readText(flags.plan, "the plan"), flags.plan), `plan ${flags.plan}`);
  if (!isDpSgd(plan))
    throw new InputError(
      'fedward audit audits DP-SGD training, and this plan does not use it: set privacy.mechanism to "dp-sgd".',
    );
  if (plan.image || plan.cohort)
    throw new InputError(
      "fedward audit reads CSV plans only for now; this plan reads images or FHIR/OMOP exports.",
    );
  const dim = inputWidth(plan);
  const m = flags.canaries ?? 2 * dim;
  const rows = await readRows(plan, flags.files);
  const audited = auditedPlan(plan, rows.units, m, flags.noiseMultiplier);
  tf.env().set("PROD", true); // no "install tfjs-node" banner: the browser's backends are what sites run
  await tf.setBackend("cpu");
  await tf.ready();
  const global = initialWeights(audited, rng);
  const start = performance.now();
  const reference = await trainAllRounds(audited, global, source(dim, rows), rng);
  const canaryX = canaryInputs(m, dim, rng);
  const referenceLoss = await losses(audited, reference, canaryX, new Float32Array(m));
  // Label each canary against the reference model (loss for label 0 above ln 2 means it predicts 1).
  const canaries = { x: canaryX, y: Float32Array.from(referenceLoss, (l) => (l > Math.LN2 ? 0 : 1)) };
  const included = Array.from({ length: m }, () => rng.uniformInt(2) === 1);
  const inCount = included.filter(Boolean).length;
  const trained = withCanaries(dim, rows, canaries, included);
  const final = await trainAllRounds(audited, global, source(dim, trained), rng);
  const seconds = (performance.now() - start) / 1000;
  const before = await losses(audited, reference, canaries.x, canaries.y);
  const after = await losses(audited, final, canaries.x, canaries.y);
  const scores = before.map((l, i) => l - (after[i] as number));
  const { delta } = audited.privacy;
  const ks = [...new Set([0.1, 0.2, 0.3, 0.4].map((f) => Math.max(1, Math.round(f * m))))];
  const result = auditScores(scores, included, {
    delta,
    beta: BETA,
    choices: ks.map((k) => [k, k] as const),
  });
  const units = rows.units + inCount;
  const proven = planPrivacy(audited, units).epsilonAllRounds;
  const { samplingRate, noiseMultiplier, clipNorm, stepsPerRound } = audited.privacy;
  return [
    `audit: rows=${rows.y.length} skipped=${rows.skipped} units=${rows.units} canaries=${m} included=${inCount} ` +
      `steps=${plan.rounds * (stepsPerRound ?? 0)} sampling_rate=${formatNumber(samplingRate ?? 0)} ` +
      `noise_multiplier=${formatNumber(noiseMultiplier)} clip_norm=${formatNumber(clipNorm)} delta=${delta}`,
    `guesses=${result.guesses} correct=${result.correct} k_plus=${result.kPlus} k_minus=${result.kMinus} ` +
      `confidence=${1 - BETA} training_seconds=${seconds.toFixed(1)}`,
    `epsilon_lower_bound=${formatNumber(result.epsilonLowerBound)}`,
    `epsilon_proven=${formatNumber(proven)}`,
  ];
}

/**
 * `fedward audit ...`; fedward.mjs does the I/O. Every random choice (initial weights, canaries, coins,
 * sampling, noise) comes from `rng`: crypto.getRandomValues, unless a test seeds it to be reproducible.
 */
export async function runAuditCli(argv: string[], rng = new CryptoRandom()): Promise<CliResult> {
  let flags: Flags | "help";
  try {
    flags = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError || isParseArgsError(e))) throw e;
    return {
      code: USAGE_ERROR,
      stdout: "",
      stderr: `fedward audit: ${(e as Error).message}\n${AUDIT_USAGE}`,
    };
  }
  if (flags === "help") return { code: 0, stdout: AUDIT_USAGE, stderr: "" };
  const warning =
    flags.noiseMultiplier === undefined
      ? ""
      : `fedward audit: warning: --noise-multiplier ${flags.noiseMultiplier} replaces the plan's noise; ` +
        "this run checks the audit's power and is not private.\n";
  try {
    const lines = await audit(flags, rng);
    return { code: 0, stdout: `${lines.join("\n")}\n`, stderr: warning };
  } catch (e) {
    if (!isInputProblem(e)) throw e;
    return { code: 1, stdout: "", stderr: `${warning}fedward audit: ${(e as Error).message}\n` };
  }
}

/**
 * The user's files or plan: unreadable, not a valid plan, data the plan cannot use, or settings the trainer
 * refuses (a RangeError, e.g. a --noise-multiplier too large for the noise table, as `fedward privacy`).
 */
function isInputProblem(e: unknown): boolean {
  const name = (e as Error | null)?.name;
  return e instanceof RangeError || name === "InputError" || name === "ImportError" || name === "PlanError";
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}
