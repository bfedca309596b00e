import { execFileSync, spawnSync } from "node:child_process";
import { inputWidth, type Plan } from "../../src/core/plan";

/**
 * Native PyTorch on the CPU as the yardstick of the training benchmarks (test/bench/train.ts in Node,
 * test/bench/worker-bench.ts in Chromium): the same models, trained by test/bench/train_torch.py.
 */

/** The first Python that imports torch: the one on PATH, or Debian's (where python3-torch installs). */
export function torchPython(): string | undefined {
  return ["python3", "/usr/bin/python3"].find(
    (python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0,
  );
}

/** With --install-torch on the command line, installs Debian's python3-torch first (never in npm test). */
export function maybeInstallTorch(): void {
  if (!process.argv.includes("--install-torch") || torchPython()) return;
  console.log("bench train: installing Debian's python3-torch (apt-get)");
  execFileSync("apt-get", ["update"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "python3-torch"], {
    stdio: "inherit",
  });
}

/** Median examples/s of PyTorch training the same model on the CPU with this many threads. */
export function torchRate(
  python: string,
  plan: Plan,
  threads: number,
  steps: number,
  repeats: number,
): number {
  const job = { plan: { ...plan, inputWidth: inputWidth(plan) }, steps, repeats, threads };
  const run = spawnSync(python, ["test/bench/train_torch.py"], {
    input: JSON.stringify(job),
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`train_torch.py failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { examples_per_second: number }).examples_per_second;
}

/**
 * Median examples/s of PyTorch doing the same DP-SGD step (test/bench/dp_sgd_torch.py: per-example
 * gradients by vmap over grad, clip each to `clip`, sum, Gaussian noise of std `sigma`, optimizer step) on
 * the CPU with this many threads, at a fixed batch.
 */
export function torchDpSgdRate(
  python: string,
  plan: Plan,
  job: { threads: number; batch: number; steps: number; repeats: number; clip: number; sigma: number },
): number {
  const input = JSON.stringify({ plan: { ...plan, inputWidth: inputWidth(plan) }, ...job });
  const run = spawnSync(python, ["test/bench/dp_sgd_torch.py"], { input, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`dp_sgd_torch.py failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { examples_per_second: number }).examples_per_second;
}
