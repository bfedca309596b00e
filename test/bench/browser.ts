/**
 * `npm run bench` (second part): training throughput of the real site app in Debian's Chromium, per backend
 * forced by URL, end to end (IndexedDB shard streaming, the training worker, the demo plan's MLP).
 * One site, a 3-round federation per backend; prints the median over rounds of examples/s.
 * On this machine WebGPU is SwiftShader (a CPU-emulated fallback adapter): its number is not a GPU's.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parsePlan } from "../../src/core/plan";
import { launchSite } from "../e2e/browser";
import { freshCoordinator } from "../e2e/coordinator";
import { enrollAndImport, trainUntilDone } from "../e2e/site-page";
import { median } from "./timing";

const backends = (process.env.BENCH_BACKENDS ?? "wasm,cpu,webgl,webgpu").split(",");
const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
const coordinator = await freshCoordinator();
try {
  for (const backend of backends) {
    const plan = { ...demo, id: `bench-${backend}`, rounds: 3, minSites: 1 };
    const { invites } = await coordinator.storage.createFederation(plan, ["Bench site"]);
    const site = await launchSite();
    try {
      const page = await site.context.newPage();
      const url = `${coordinator.url}/?invite=${invites[0]?.code}&backend=${backend}`;
      const holdout = await enrollAndImport(page, url, resolve("public/demo/wdbc-site1.csv"));
      const started = performance.now();
      const result = await trainUntilDone(page, holdout, 600_000);
      const seconds = (performance.now() - started) / 1000;
      const rates = (await page
        .locator("[data-testid=rounds] tbody tr")
        .evaluateAll((rows) =>
          rows.map((r) => Number((r as HTMLElement).dataset.examplesPerSecond)).filter((x) => x > 0),
        )) as number[];
      const middle = rates.length > 0 ? median(rates) : Number.NaN;
      console.log(
        `bench browser backend=${result.backend} examples_per_s_median=${Math.round(middle)} rounds=${rates.length} ` +
          `wall_s=${seconds.toFixed(1)} batch=${plan.training.batchSize} fallback_adapter=${result.fallbackAdapter}`,
      );
    } finally {
      await site.close();
    }
  }
} finally {
  await coordinator.dispose();
}
