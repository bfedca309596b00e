/**
 * `npx tsx test/bench/dp-sgd.ts [--install-torch]` (part of `npm run bench`; the Chromium worker's figures
 * come from worker-bench.ts): DP-SGD examples/s against non-private examples/s at the same batch for the
 * WDBC demo's MLP (batch 64) and the bench CNN (batch 32) of bench-models.ts on tfjs's wasm and cpu
 * backends in Node. A DP-SGD step is benchDpSgdStep's (workers/train/throughput.ts: the real
 * clippedGradientSum, noiseClippedSum and optimizer), non-private is benchTrain's trainOnBatch. PyTorch on
 * one CPU thread doing the same DP-SGD step (dp_sgd_torch.py, vmap per-sample gradients) is the yardstick
 * when python3 imports torch. All of them alternate run by run, so a noisy machine loads them alike.
 */
import { dpSgdPrivacy } from "../../src/core/plan";
import { benchDpSgdStep, benchTrain } from "../../workers/train/throughput";
import { useWasmFromNodeModules } from "../unit/workers/wasm-node";
import { benchModels } from "./bench-models";
import { addRun, type DpSgdFigures, dpSgdLines, emptyFigures } from "./dp-sgd-lines";
import { median } from "./timing";
import { maybeInstallTorch, torchDpSgdRate, torchPython } from "./torch";

const BACKENDS = (process.env.BENCH_BACKENDS ?? "wasm,cpu").split(",");

maybeInstallTorch();
useWasmFromNodeModules();
const python = torchPython();
if (!python)
  console.log("bench dp-sgd: no PyTorch (python3 -c 'import torch' fails); run with --install-torch");
for (const [name, plan, { steps, repeats, batch, dpSgd }] of benchModels()) {
  const results: Record<string, DpSgdFigures> = Object.fromEntries(BACKENDS.map((b) => [b, emptyFigures()]));
  const { clipNorm, noiseMultiplier } = dpSgdPrivacy(dpSgd);
  const torch: number[] = [];
  // Repeat by repeat, every measurement once, so that a load that comes and goes weighs on all alike.
  for (let r = 0; r < repeats; r++) {
    for (const backend of BACKENDS) {
      // tfjs's cpu conv gradient reads element by element: a few steps are plenty to measure it.
      const timed = name === "cnn" && backend === "cpu" ? 2 : steps;
      const once = { steps: timed, repeats: 1, batchSize: batch };
      const nonPrivate = await benchTrain(plan, backend, once);
      addRun(
        results[backend] as DpSgdFigures,
        await benchDpSgdStep(dpSgd, backend, once),
        nonPrivate.examplesPerSecond,
      );
    }
    if (python) {
      const job = { threads: 1, batch, steps, repeats: 1, clip: clipNorm, sigma: noiseMultiplier * clipNorm };
      torch.push(torchDpSgdRate(python, dpSgd, job));
    }
  }
  const lines = dpSgdLines("", name, batch, results, torch.length > 0 ? median(torch) : undefined);
  for (const line of lines) console.log(line);
}
