/**
 * Run as a module Web Worker in Chromium by test/bench/worker-bench.ts (served by Vite's dev server): the
 * DICOM pipeline's and the training loop's own benchmark functions, on the thread they run on in the app.
 */
import { expose } from "comlink";
import type { Plan } from "../../src/core/plan";
import { benchDicomSlices } from "../../workers/import/dicom/bench";
import { configureDicomCodecs } from "../../workers/import/dicom/codecs";
import { dicomWasmUrls } from "../../workers/import/dicom/wasm-urls";
import "../../workers/train/backends";
import { benchDpSgdStep, benchTrain } from "../../workers/train/throughput";

configureDicomCodecs({ wasm: dicomWasmUrls });

const api = {
  dicom(n: number, source?: Uint8Array) {
    return benchDicomSlices(n, source);
  },
  train(plan: Plan, backend: string, steps: number, repeats: number) {
    return benchTrain(plan, backend, { steps, repeats });
  },
  /** One DP-SGD step as fitDpSgd takes it (a dp-sgd plan), at a fixed batch: see benchDpSgdStep. */
  dpSgd(plan: Plan, backend: string, steps: number, repeats: number, batchSize: number) {
    return benchDpSgdStep(plan, backend, { steps, repeats, batchSize });
  },
  async adapter(): Promise<string> {
    const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    const adapter = (await gpu?.requestAdapter()) as {
      info?: { vendor?: string; description?: string };
      isFallbackAdapter?: boolean;
    } | null;
    if (!adapter) return "no WebGPU adapter";
    return `${adapter.info?.vendor ?? "?"} ${adapter.info?.description ?? ""} fallback=${adapter.isFallbackAdapter ?? (adapter.info && (adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter)}`;
  },
};

export type BenchWorkerApi = typeof api;
expose(api);
