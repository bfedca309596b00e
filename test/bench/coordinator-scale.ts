/**
 * `npx tsx test/bench/coordinator-scale.ts` (part of `npm run bench`; loopback only): a real coordinator
 * process (test/support/coordinator-process.ts) serving BENCH_SITES sites for BENCH_ROUNDS rounds of a
 * DP-SGD plan with about BENCH_PARAMS weights, on PGlite and on a throwaway PostgreSQL (test/support/
 * postgres.ts: fsync off, so its figures are a lower bound for a durable server). Each site uploads a
 * distinct one-hot delta (site s moves weight (r-1)·S + s by exactly STEP in round r), so the expected model
 * is exact and every lost or twice-counted update shows as 0 or 2 STEP at its weight.
 *
 * Prints, per engine: lost / duplicated / refused updates (must be 0), p50 and p99 latency per request
 * type, each round's time and its upload latency ratio (median of the last 10 uploads over the first 10;
 * target <= 1.5: an upload must not slow down as the round fills), and the coordinator's RSS.
 *
 * Env: BENCH_SITES (200), BENCH_ROUNDS (3), BENCH_PARAMS (1000000), BENCH_ENGINES (pglite,postgres),
 * BENCH_CONCURRENCY (8 requests in flight), BENCH_TIMEOUT_S (1800, per engine).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Plan, paramCount, parsePlan } from "../../src/core/plan";
import { maxDpSgdDeltaNorm } from "../../src/core/privacy/dp-sgd";
import { apiPaths, type EnrollResponse, type FederationState } from "../../src/core/protocol";
import { decodeVector, encodeVector, WireKind } from "../../src/core/wire";
import { type CoordinatorProcess, startCoordinatorProcess } from "../support/coordinator-process";
import { startTestPostgres } from "../support/postgres";
import { median } from "./timing";

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1`);
  return value;
};
const SITES = env("BENCH_SITES", 200);
const ROUNDS = env("BENCH_ROUNDS", 3);
const PARAMS = env("BENCH_PARAMS", 1_000_000);
const CONCURRENCY = env("BENCH_CONCURRENCY", 8);
const TIMEOUT_S = env("BENCH_TIMEOUT_S", 1800);
const ENGINES = (process.env.BENCH_ENGINES ?? "pglite,postgres").split(",") as ("pglite" | "postgres")[];
/** A power of two: the mean of one nonzero STEP·S and S−1 zeros is STEP in float32 and float64 alike. */
const STEP = 2 ** -12;
const REQUEST_TIMEOUT_MS = 300_000;

type Kind = "enroll" | "state" | "model" | "upload";

/** The digits demo plan with an MLP on 32×32 pixels sized to about PARAMS weights, all sites every round. */
function benchPlan(): Plan {
  const digits = JSON.parse(readFileSync(resolve("public/demo/digits-plan.json"), "utf8"));
  const inputs = 32 * 32;
  const hidden = Math.min(4096, Math.max(1, Math.round((PARAMS - 1) / (inputs + 2))));
  // A huge model needs a noise grid finer than the table allows at a large z: take the largest that works.
  for (const noiseMultiplier of [2.4, 1.2, 0.6, 0.3, 0.15]) {
    const plan = parsePlan(
      {
        ...digits,
        id: "coordinator-scale",
        title: "Coordinator scale bench",
        image: { ...digits.image, width: 32, height: 32 },
        model: { type: "mlp", hidden: [hidden], activation: "relu" },
        privacy: { ...digits.privacy, noiseMultiplier },
        rounds: ROUNDS,
        minSites: SITES,
      },
      "bench plan",
    );
    try {
      if (maxDpSgdDeltaNorm(plan, paramCount(plan)) > STEP * SITES) return plan;
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
  }
  throw new Error(`no noise multiplier makes a ${PARAMS}-weight DP-SGD plan the coordinator accepts`);
}

class Recorder {
  readonly ms: Record<Kind, number[]> = { enroll: [], state: [], model: [], upload: [] };

  async call(kind: Kind, url: string, init: RequestInit = {}) {
    const start = performance.now();
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const ms = performance.now() - start;
    this.ms[kind].push(ms);
    return { status: response.status, bytes, ms };
  }
}

async function pool(count: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
}

const percentile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
};
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Resident set size of `pid` in MiB (Linux), the current value and the peak (VmHWM). */
function rssMiB(pid: number): { now: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
    return { now: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

interface RoundFigures {
  ms: number;
  downloadsMs: number;
  uploadsMs: number;
  /** Upload latencies in the order the uploads were sent. */
  uploads: number[];
}

async function benchEngine(
  engine: "pglite" | "postgres",
  plan: Plan,
  planPath: string,
  dir: string,
): Promise<boolean> {
  const weights = paramCount(plan);
  if (weights < SITES)
    throw new Error(`BENCH_PARAMS gives ${weights} weights, fewer than the ${SITES} sites`);
  const cluster = engine === "postgres" ? await startTestPostgres() : undefined;
  let coordinator: CoordinatorProcess | undefined;
  let sampler: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  try {
    coordinator = await startCoordinatorProcess({
      DEMO_PLAN: planPath,
      DEMO_SITES: String(SITES),
      APP_DIR: join(dir, "no-dist"),
      DATA_DIR: join(dir, `data-${engine}`),
      DATABASE_URL: cluster ? await cluster.createDatabase("fedward_bench") : undefined,
      // Every site enrols from 127.0.0.1 within seconds: far above the per-address limit meant for strangers.
      ENROLL_RATE_LIMIT: "0",
    });
    const base = coordinator.url;
    const pid = coordinator.pid;
    let peakSampled = 0;
    sampler = setInterval(() => {
      peakSampled = Math.max(peakSampled, rssMiB(pid)?.now ?? 0);
    }, 200);
    const rssAtStart = rssMiB(pid);
    const timeout = new Promise<"timeout">((done) => {
      timer = setTimeout(() => done("timeout"), TIMEOUT_S * 1000);
    });
    const recorder = new Recorder();
    // Filled as the run goes, so that a run stopped by BENCH_TIMEOUT_S still reports what it measured.
    const models: Float32Array[] = [];
    const rounds: RoundFigures[] = [];
    let refused = 0;
    const run = async () => {
      const sites: EnrollResponse[] = [];
      await pool(SITES, async (i) => {
        const invite = coordinator?.invites[i];
        const reply = await recorder.call("enroll", `${base}${apiPaths.enroll}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ inviteCode: invite?.code }),
        });
        if (reply.status !== 200) throw new Error(`enrolment ${i}: ${reply.status} ${text(reply.bytes)}`);
        sites[i] = JSON.parse(text(reply.bytes)) as EnrollResponse;
      });
      const site = (i: number) => sites[i] as EnrollResponse;
      const auth = (i: number) => ({ authorization: `Bearer ${site(i).token}` });
      const federationId = site(0).federationId;
      for (let round = 1; round <= ROUNDS; round++) {
        const start = performance.now();
        let served: Uint8Array | undefined;
        let wrongState = 0;
        await pool(SITES, async (i) => {
          const state = await recorder.call("state", `${base}${apiPaths.state(federationId)}`, {
            headers: auth(i),
          });
          const parsed = JSON.parse(text(state.bytes)) as FederationState;
          if (state.status !== 200 || parsed.round !== round) wrongState++;
          const model = await recorder.call("model", `${base}${apiPaths.model(federationId, round - 1)}`, {
            headers: auth(i),
          });
          if (model.status !== 200) throw new Error(`model ${round - 1}: ${model.status}`);
          served ??= model.bytes;
          if (!Buffer.from(served).equals(Buffer.from(model.bytes))) {
            throw new Error(`site ${i} got a different model version ${round - 1} than site 0`);
          }
        });
        if (wrongState > 0) throw new Error(`round ${round}: ${wrongState} state replies not at this round`);
        models.push(decodeVector(served as Uint8Array, { kind: WireKind.model, count: weights }).values);
        const downloaded = performance.now();
        // The pool starts sites in index order, so uploads[i] is the i-th upload sent this round.
        const uploads: number[] = [];
        await pool(SITES, async (i) => {
          const values = new Float32Array(weights);
          values[((round - 1) * SITES + i) % weights] = STEP * SITES;
          const reply = await recorder.call("upload", `${base}${apiPaths.update(federationId, round)}`, {
            method: "POST",
            headers: { ...auth(i), "content-type": "application/octet-stream" },
            body: encodeVector({
              kind: WireKind.update,
              round,
              numExamples: 10,
              values,
            }) as Uint8Array<ArrayBuffer>,
          });
          uploads[i] = reply.ms;
          if (reply.status !== 202) {
            refused++;
            console.log(`  round ${round} site ${i}: ${reply.status} ${text(reply.bytes).slice(0, 200)}`);
          }
        });
        const end = performance.now();
        rounds.push({
          ms: end - start,
          downloadsMs: downloaded - start,
          uploadsMs: end - downloaded,
          uploads,
        });
      }
      const final = await recorder.call("model", `${base}${apiPaths.model(federationId, ROUNDS)}`, {
        headers: auth(0),
      });
      if (final.status !== 200) throw new Error(`final model: ${final.status} ${text(final.bytes)}`);
      models.push(decodeVector(final.bytes, { kind: WireKind.model, count: weights }).values);
    };
    stopped = (await Promise.race([run(), timeout])) === "timeout";
    const rssAtEnd = rssMiB(pid);
    const { lost, duplicated, otherMoved, exact } = countUpdates(models);

    const mb = (4 * weights) / 1e6;
    console.log(
      `bench coordinator-scale ${engine}: ${SITES} sites x ${ROUNDS} rounds, ${weights} weights ` +
        `(${mb.toFixed(2)} MB per update and model), ${CONCURRENCY} requests in flight`,
    );
    if (stopped) {
      console.log(
        `  STOPPED at BENCH_TIMEOUT_S=${TIMEOUT_S} s with ${Math.max(0, models.length - 1)} of ${ROUNDS} ` +
          "rounds aggregated; the figures below cover those",
      );
    }
    console.log(
      `  lost ${lost}, duplicated ${duplicated}, refused ${refused}, other weights moved ${otherMoved}, ` +
        `every aggregate exact: ${exact ? "yes" : "no"}`,
    );
    for (const kind of ["enroll", "state", "model", "upload"] as const) {
      const xs = recorder.ms[kind];
      console.log(
        `  ${kind.padEnd(6)} p50 ${percentile(xs, 0.5).toFixed(1)} ms, p99 ${percentile(xs, 0.99).toFixed(1)} ms ` +
          `(${xs.length} requests)`,
      );
    }
    rounds.forEach((r, i) => {
      const first = median(r.uploads.slice(0, 10));
      const last = median(r.uploads.slice(-10));
      const ratio = last / first;
      const slowest = Math.max(...r.uploads);
      console.log(
        `  round ${i + 1}: ${(r.ms / 1000).toFixed(2)} s (state + model for all ${(r.downloadsMs / 1000).toFixed(2)} s, ` +
          `uploads ${(r.uploadsMs / 1000).toFixed(2)} s); upload median last 10 / first 10 = ` +
          `${last.toFixed(1)} / ${first.toFixed(1)} ms = ${ratio.toFixed(2)} (target <= 1.5: ` +
          `${ratio <= 1.5 ? "met" : "missed"}); slowest upload ${slowest.toFixed(0)} ms (number ${r.uploads.indexOf(slowest) + 1} sent)`,
      );
    });
    const peak = Math.max(peakSampled, rssAtEnd?.now ?? 0);
    console.log(
      `  coordinator RSS: ${rssAtStart?.now.toFixed(0)} MiB after start, ${rssAtEnd?.now.toFixed(0)} MiB at the ` +
        `end, peak ${peak.toFixed(0)} MiB sampled every 200 ms (kernel high-water mark ${rssAtEnd?.peak.toFixed(0)} MiB)`,
    );
    return !stopped && lost === 0 && duplicated === 0 && refused === 0 && otherMoved === 0 && exact;
  } finally {
    clearInterval(sampler);
    clearTimeout(timer);
    // A stopped run still has uploads queued: a graceful close would wait for all of them.
    await (stopped ? coordinator?.kill() : coordinator?.stop());
    await cluster?.stop();
  }
}

/**
 * Each aggregated round's model against its predecessor: site s's weight moved by how many STEPs (1 if its
 * update counted once), every other weight not at all, and the model exactly the expected one.
 */
function countUpdates(models: Float32Array[]) {
  let lost = 0;
  let duplicated = 0;
  let otherMoved = 0;
  let exact = true;
  for (let round = 1; round < models.length; round++) {
    const before = models[round - 1] as Float32Array;
    const after = models[round] as Float32Array;
    const weights = before.length;
    const first = ((round - 1) * SITES) % weights;
    const expected = Float32Array.from(before);
    for (let s = 0; s < SITES; s++) {
      const w = (first + s) % weights;
      expected[w] = (before[w] as number) + STEP;
      const times = Math.round(((after[w] as number) - (before[w] as number)) / STEP);
      if (times === 0) lost++;
      if (times >= 2) duplicated += times - 1;
    }
    for (let w = 0; w < weights; w++) {
      if (after[w] !== expected[w]) exact = false;
      const oneHot = (w - first + weights) % weights < SITES;
      if (!oneHot && after[w] !== before[w]) otherMoved++;
    }
  }
  return { lost, duplicated, otherMoved, exact };
}

const plan = benchPlan();
const dir = await mkdtemp(join(tmpdir(), "fedward-scale-"));
let ok = true;
try {
  const planPath = join(dir, "plan.json");
  await writeFile(planPath, JSON.stringify(plan));
  for (const engine of ENGINES) ok = (await benchEngine(engine, plan, planPath, dir)) && ok;
} finally {
  await rm(dir, { recursive: true, force: true });
}
if (!ok) {
  console.error(
    "bench coordinator-scale: an update was lost, counted twice or refused, or a run was stopped (see above)",
  );
  process.exit(1);
}
