/** The page of test/bench/worker-bench.ts: starts the benchmark worker and hands it to the driver. */
import { wrap } from "comlink";
import type { BenchWorkerApi } from "./bench.worker";

const worker = new Worker(new URL("./bench.worker.ts", import.meta.url), { type: "module" });
(globalThis as unknown as { bench: unknown }).bench = wrap<BenchWorkerApi>(worker);
