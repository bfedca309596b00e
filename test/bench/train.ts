/**
 * `npx tsx test/bench/train.ts [--install-torch]`: training throughput (examples/s, medians over repeats)
 * of the demo plan's MLP (WDBC, 30 → 8 → 1) and a small CNN (28×28×1, conv 8 + pool, conv 16 + pool,
 * dense 32) on tfjs's cpu and wasm backends in Node, next to native PyTorch on the CPU (1 thread, as
 * fedward's wasm runs, and all cores) when `python3 -c "import torch"` works. With --install-torch it first
 * installs Debian's python3-torch (apt-get; never done by npm test). tfjs-node is not used: the browser's
 * backends are what sites run. The browser's own backends (webgpu, webgl, wasm in a worker) can call
 * benchTrain from workers/train/throughput.ts the same way.
 */
import { availableParallelism } from "node:os";
import { benchTrain } from "../../workers/train/throughput";
import { useWasmFromNodeModules } from "../unit/workers/wasm-node";
import { benchModels } from "./bench-models";
import { maybeInstallTorch, torchPython, torchRate } from "./torch";

const models = benchModels();

maybeInstallTorch();
useWasmFromNodeModules();
const python = torchPython();
if (!python)
  console.log("bench train: no PyTorch (python3 -c 'import torch' fails); run with --install-torch");
const cores = availableParallelism();
for (const [name, plan, { steps, repeats }] of models) {
  const rates: Record<string, number> = {};
  for (const backend of ["wasm", "cpu"]) {
    // tfjs's cpu conv gradient reads element by element: a few steps are plenty to measure it.
    const few = name === "cnn" && backend === "cpu" ? { steps: 2, repeats: 3 } : { steps, repeats };
    rates[backend] = (await benchTrain(plan, backend, few)).examplesPerSecond;
  }
  if (python) {
    rates["torch-1-thread"] = torchRate(python, plan, 1, steps, repeats);
    rates[`torch-${cores}-threads`] = torchRate(python, plan, cores, steps, repeats);
  }
  const batch = plan.training.batchSize;
  for (const [backend, rate] of Object.entries(rates)) {
    console.log(`bench train ${name} batch=${batch} ${backend}: median ${Math.round(rate)} examples/s`);
  }
  const reference = rates["torch-1-thread"];
  if (reference !== undefined) {
    const ratios = ["wasm", "cpu"].map(
      (b) => `${b}/torch-1-thread=${((rates[b] as number) / reference).toFixed(3)}`,
    );
    console.log(`bench train ${name} ratios: ${ratios.join(" ")}`);
  }
}
