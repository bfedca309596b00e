/**
 * `npm run bench` (noise part): the mechanism's noise throughput inside a Web Worker in Debian's Chromium,
 * the place it runs in the product. The worker code is bundled here by Vite and started from a blob URL on
 * a blank page, so nothing but the sampler is measured.
 */
import { resolve } from "node:path";
import { build } from "vite";
import { launchSite } from "../e2e/browser";
import { median } from "./timing";

const output = await build({
  configFile: false,
  logLevel: "silent",
  build: {
    write: false,
    minify: true,
    lib: { entry: resolve("test/bench/noise-worker.ts"), formats: ["es"], fileName: "noise-worker" },
  },
});
const chunks = (Array.isArray(output) ? output : [output]).flatMap((o) => ("output" in o ? o.output : []));
const code = chunks.find((c) => c.type === "chunk")?.code;
if (!code) throw new Error("Vite produced no bundle for test/bench/noise-worker.ts");

const site = await launchSite();
try {
  const page = await site.context.newPage();
  const origin = "http://localhost:5999";
  await page.route(`${origin}/**`, (route) =>
    route.fulfill(
      route.request().url().endsWith("/worker.js")
        ? { contentType: "text/javascript", body: code }
        : { contentType: "text/html", body: "<!doctype html><title>noise bench</title>" },
    ),
  );
  await page.goto(`${origin}/`);
  for (const n of [100_000, 1_000_000]) {
    const ms = (await page.evaluate(
      (n) =>
        new Promise<number[]>((done, fail) => {
          const worker = new Worker("/worker.js", { type: "module" });
          worker.onmessage = (e) => {
            worker.terminate();
            done(e.data as number[]);
          };
          worker.onerror = (e) => fail(new Error(e.message));
          worker.postMessage({ n, runs: 7 });
        }),
      n,
    )) as number[];
    const middle = median(ms);
    console.log(
      `bench noise in a Chromium worker n=${n}: median ${middle.toFixed(1)} ms, ` +
        `${Math.round((n / middle) * 1000)} noise samples/s (clip, round, table sampler, scale back)`,
    );
  }
} finally {
  await site.close();
}
