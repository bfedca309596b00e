/**
 * The DP-SGD bench's figures and lines, shared by test/bench/dp-sgd.ts (Node) and worker-bench.ts
 * (Chromium worker): DP-SGD examples/s against non-private examples/s at the same batch, per backend, and
 * against PyTorch doing the same DP-SGD step on one thread (as fedward's wasm runs).
 */
import type { DpSgdStepBench } from "../../workers/train/throughput";
import { median } from "./timing";

/** Issue 11's targets: DP-SGD over non-private on the fastest backend, and fedward over PyTorch. */
export const DP_SGD_TARGETS: Record<string, number> = { mlp: 0.5, cnn: 0.25 };
export const TORCH_TARGET = 0.5;

/** Interleaved runs (one of each per repeat, so that both see the same load) and their medians. */
export interface DpSgdFigures {
  dpSgd: number[];
  nonPrivate: number[];
  /** The DP-SGD step's parts, mean ms per step, one record per repeat. */
  phases: DpSgdStepBench["phasesMs"][];
  warmupMs: number;
}

export function emptyFigures(): DpSgdFigures {
  return { dpSgd: [], nonPrivate: [], phases: [], warmupMs: 0 };
}

export function addRun(f: DpSgdFigures, dp: DpSgdStepBench, nonPrivate: number): void {
  if (f.dpSgd.length === 0) f.warmupMs = dp.warmupMs;
  f.dpSgd.push(dp.examplesPerSecond);
  f.nonPrivate.push(nonPrivate);
  f.phases.push(dp.phasesMs);
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toString() : x.toPrecision(3));

/**
 * `bench dp-sgd <model> <backend> batch=<n>: dp-sgd <x> examples/s, non-private <y> examples/s, ratio
 * <x/y> (target ≥ t)[, torch-dp-sgd-1-thread <z> examples/s, fedward/torch <x/z> (target ≥ 0.5)]`, then
 * where the step's time goes, then which backend is fastest and whether it meets the target.
 */
export function dpSgdLines(
  where: string,
  model: string,
  batch: number,
  results: Record<string, DpSgdFigures>,
  torch?: number,
): string[] {
  const target = DP_SGD_TARGETS[model] as number;
  const lines: string[] = [];
  let fastest: { backend: string; ratio: number; rate: number } | undefined;
  for (const [backend, f] of Object.entries(results)) {
    if (f.dpSgd.length === 0) continue;
    const x = median(f.dpSgd);
    const y = median(f.nonPrivate);
    const ratio = x / y;
    let line =
      `bench dp-sgd ${where}${model} ${backend} batch=${batch}: dp-sgd ${fmt(x)} examples/s, ` +
      `non-private ${fmt(y)} examples/s, ratio ${ratio.toFixed(3)} (target ≥ ${target} on the fastest backend)`;
    if (torch !== undefined)
      line +=
        `, torch-dp-sgd-1-thread ${fmt(torch)} examples/s, fedward/torch ${(x / torch).toFixed(3)} ` +
        `(target ≥ ${TORCH_TARGET})`;
    lines.push(line);
    const part = (key: keyof DpSgdFigures["phases"][number]) => median(f.phases.map((p) => p[key]));
    lines.push(
      `bench dp-sgd ${where}${model} ${backend} step: clippedGradientSum ${part("clippedSum").toFixed(2)} ms, ` +
        `noiseClippedSum ${part("noise").toFixed(2)} ms, optimizer ${part("optimizer").toFixed(3)} ms ` +
        `(medians of per-run means; ${f.dpSgd.length} runs; first warm-up step ${Math.round(f.warmupMs)} ms)`,
    );
    if (!fastest || x > fastest.rate) fastest = { backend, ratio, rate: x };
  }
  if (fastest)
    lines.push(
      `bench dp-sgd ${where}${model} fastest backend ${fastest.backend}: ratio ${fastest.ratio.toFixed(3)}, ` +
        `target ≥ ${target} ${fastest.ratio >= target ? "met" : "MISSED"}`,
    );
  return lines;
}
