import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

/**
 * Points tfjs-backend-wasm at its .wasm files in node_modules, so the wasm backend runs in Node as in the
 * app's worker (single-threaded, as the app uses it). Call before the first tf.setBackend("wasm"). A file
 * map, because a map set earlier (workers/train/backends.ts sets the app's URLs) wins over a prefix.
 */
export function useWasmFromNodeModules(): void {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm"));
  const files = [
    "tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm",
  ];
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  setWasmPaths(Object.fromEntries(files.map((f) => [f, join(dist, f)])));
}
