import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import wasmUrl from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url";
import wasmSimdUrl from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url";
import wasmThreadedUrl from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url";
import { InputError } from "../../src/core/errors";
import { isDpSgd, type Plan, siteUpdateTraining } from "../../src/core/plan";
import { measureTraining } from "./throughput";
import "./wasm-kernels";

export const BACKENDS = ["webgpu", "webgl", "wasm", "cpu"] as const;

/** The batch a dp-sgd plan's backends are timed on. */
const DP_SGD_PROBE_BATCH = 64;
export type BackendName = (typeof BACKENDS)[number];
export type BackendPreference = BackendName | "auto";

export interface BackendMeasurement {
  backend: BackendName;
  /** Training throughput on the plan's model with a synthetic batch; absent when not measured. */
  examplesPerSecond?: number;
  /** Why this backend was not measured or failed. */
  note?: string;
}

export interface BackendChoice {
  backend: BackendName;
  reason: string;
  measurements: BackendMeasurement[];
  adapter?: { fallback: boolean; description: string };
}

// The .wasm files are bundled by Vite and served by the app itself (never a CDN). Threaded wasm broke after
// Vite minification with tfjs 4.22, so only the single-threaded (SIMD when available) build is used.
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
setWasmPaths({
  "tfjs-backend-wasm.wasm": wasmUrl,
  "tfjs-backend-wasm-simd.wasm": wasmSimdUrl,
  "tfjs-backend-wasm-threaded-simd.wasm": wasmThreadedUrl,
});

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; description?: string };
}

/** Looks at the WebGPU adapter without trusting the name "webgpu": SwiftShader is a CPU emulation. */
export async function probeWebGpu(): Promise<{ fallback: boolean; description: string } | undefined> {
  const gpu = (
    globalThis.navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }
  ).gpu;
  if (!gpu) return undefined;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return undefined;
  const fallback = Boolean(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const info = adapter.info;
  const description =
    [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || "unknown";
  return { fallback, description };
}

async function activate(name: BackendName): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    throw new InputError(`${name} failed to start: ${(e as Error).message}. Choose "auto" as the backend.`);
  }
  if (!ok) throw new InputError(`${name} is not available in this browser. Choose "auto" as the backend.`);
  await tf.ready();
}

/**
 * Examples per second of real training steps of the plan's own model (CNN or MLP, at its batch size and
 * input shape), so that a CNN plan picks the backend fastest for convolutions, not for an MLP.
 */
async function measure(plan: Plan, budgetMs: number): Promise<number> {
  // A dp-sgd plan has no batch size (its batches are Poisson samples); 64 examples stand for one.
  const batchSize = isDpSgd(plan) ? DP_SGD_PROBE_BATCH : siteUpdateTraining(plan).batchSize;
  const { examplesPerSecond } = await measureTraining(plan, {
    budgetMs,
    minSteps: 1,
    maxSteps: 50,
    batchSize,
  });
  return examplesPerSecond;
}

function fmt(m: BackendMeasurement): string {
  return m.examplesPerSecond !== undefined
    ? `${m.backend} ${Math.round(m.examplesPerSecond)} examples/s`
    : `${m.backend}: ${m.note ?? "not measured"}`;
}

/**
 * WebGPU unless the adapter is a fallback (software) adapter or a short measurement shows another backend
 * faster; then WebGL, WASM, CPU. A forced backend is used as asked, or fails with a clear message.
 */
export async function chooseBackend(plan: Plan, preference: BackendPreference): Promise<BackendChoice> {
  const adapter = await probeWebGpu().catch(() => undefined);
  if (preference !== "auto") {
    await activate(preference);
    const why = adapter?.fallback && preference === "webgpu" ? " (the adapter is a software fallback)" : "";
    return { backend: preference, reason: `forced by setting${why}`, measurements: [], adapter };
  }
  const measurements: BackendMeasurement[] = [];
  for (const backend of BACKENDS) {
    if (backend === "webgpu" && !adapter) {
      measurements.push({ backend, note: "no WebGPU adapter" });
      continue;
    }
    if (backend === "webgpu" && adapter?.fallback) {
      measurements.push({ backend, note: `fallback adapter (${adapter.description}), CPU-emulated` });
      continue;
    }
    if (backend === "cpu" && plan.model.type === "cnn" && measurements.some((m) => m.examplesPerSecond)) {
      // tfjs's cpu conv gradient reads element by element: about 50 times slower than wasm on a small CNN
      // (test/bench/train.ts), and one step on a large image would take minutes just to measure.
      measurements.push({ backend, note: "not measured for a CNN (far slower than wasm)" });
      continue;
    }
    try {
      await activate(backend);
      measurements.push({ backend, examplesPerSecond: await measure(plan, 400) });
    } catch (e) {
      measurements.push({ backend, note: (e as Error).message });
    }
  }
  const measured = measurements.filter((m) => m.examplesPerSecond !== undefined);
  if (measured.length === 0) {
    throw new InputError(`No training backend works in this browser: ${measurements.map(fmt).join("; ")}.`);
  }
  const best = measured.reduce((a, b) => ((b.examplesPerSecond ?? 0) > (a.examplesPerSecond ?? 0) ? b : a));
  await activate(best.backend);
  const webgpu = measurements[0] as BackendMeasurement;
  const lead =
    best.backend === "webgpu"
      ? "webgpu is fastest"
      : webgpu.examplesPerSecond === undefined
        ? `webgpu skipped (${webgpu.note})`
        : `${best.backend} measured faster than webgpu`;
  return {
    backend: best.backend,
    reason: `${lead}; measured ${measured.map(fmt).join(", ")}`,
    measurements,
    adapter,
  };
}
