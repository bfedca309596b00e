/**
 * Bundled by test/bench/noise.ts and run as a Web Worker in Chromium: times the mechanism's noise on the
 * worker thread, as the training worker makes it (table sampler, crypto.getRandomValues bytes).
 */
import { privatizeDelta } from "../../src/core/privacy/mechanism";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ n: number; runs: number }>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => {
  const { n, runs } = e.data;
  const delta = new Float32Array(n);
  const privacy = { clipNorm: 2, noiseMultiplier: 0.5, delta: 1e-5 };
  privatizeDelta(delta, privacy); // warm-up, builds the table
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    privatizeDelta(delta, privacy);
    ms.push(performance.now() - t);
  }
  scope.postMessage(ms);
};
