/**
 * `npm run bench` (FHIR import part): the site's FHIR Bulk Data import in Debian's Chromium, end to end
 * through the real file input, the import worker's two passes and IndexedDB, on the Synthea bulk export
 * repeated COPIES times with new ids (NDJSON, uncompressed, one file per resource type and copy).
 * Prints MiB/s and the peak resident memory of Chromium's renderer processes (the page and its workers),
 * sampled every 200 ms: it should stay flat as the export grows, not grow with it.
 * BENCH_FHIR_COPIES=1,8 (default) sets the sizes; about 60 MiB per copy.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { parsePlan } from "../../src/core/plan";
import { launchSite } from "../e2e/browser";
import { freshCoordinator } from "../e2e/coordinator";
import { median } from "./timing";
import { attachWorkers, type WorkerTarget } from "./worker-cdp";

const SOURCE = resolve("../shared/data/fhir/synthea-r4-bulk");
const PROFILE = process.env.BENCH_PROFILE;
const copiesList = (process.env.BENCH_FHIR_COPIES ?? "1,8").split(",").map(Number);

/** Renderer processes' resident memory in MiB, summed (the page's renderer runs its workers too). */
function rendererRssMiB(): number {
  try {
    const out = execFileSync("ps", ["-eo", "rss,args"], { encoding: "utf8" });
    return (
      out
        .split("\n")
        .filter((l) => l.includes("--type=renderer"))
        .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0) / 1024
    );
  } catch {
    return Number.NaN;
  }
}

/** The export repeated `copies` times; every id and reference gets the copy's prefix, so patients are new. */
function makeExport(dir: string, copies: number): string[] {
  const files: string[] = [];
  for (const name of readdirSync(SOURCE).filter((n) => n.endsWith(".ndjson.gz"))) {
    const text = gunzipSync(readFileSync(join(SOURCE, name))).toString("utf8");
    for (let c = 0; c < copies; c++) {
      const path = join(dir, `${name.replace(".ndjson.gz", "")}.${c}.ndjson`);
      writeFileSync(
        path,
        c === 0
          ? text
          : text
              .replace(/"id":"([^"]+)"/g, `"id":"c${c}-$1"`)
              .replace(/"reference":"(\w+)\/([^"]+)"/g, `"reference":"$1/c${c}-$2"`),
      );
      files.push(path);
    }
  }
  return files;
}

if (!statSync(SOURCE, { throwIfNoEntry: false })) {
  console.log(`bench fhir import: skipped, ${SOURCE} is absent`);
  process.exit(0);
}
const coordinator = await freshCoordinator();
try {
  const plan = parsePlan(JSON.parse(readFileSync("public/demo/synthea-hypertension-plan.json", "utf8")));
  for (const copies of copiesList) {
    const dir = mkdtempSync(join(tmpdir(), "fedward-bench-fhir-"));
    const site = await launchSite();
    try {
      const files = makeExport(dir, copies);
      const mib = files.reduce((s, f) => s + statSync(f).size, 0) / 2 ** 20;
      const { invites } = await coordinator.storage.createFederation(
        { ...plan, id: `bench-fhir-${copies}`, minSites: 1 },
        ["Bench"],
      );
      const page = await site.context.newPage();
      await page.goto(`${coordinator.url}/?invite=${invites[0]?.code}`);
      await page.getByTestId("plan-hash").waitFor();
      const cdp = await attachWorkers(page);
      let peak = rendererRssMiB();
      const baseline = peak;
      // The import worker's own V8 heap (used bytes), sampled alongside: the JS heap the issue asks about.
      let worker: WorkerTarget | undefined;
      const heaps: number[] = [];
      const sampler = setInterval(() => {
        peak = Math.max(peak, rendererRssMiB());
        worker
          ?.send<{ usedSize: number }>("Runtime.getHeapUsage")
          .then((h) => heaps.push(h.usedSize / 2 ** 20))
          .catch(() => undefined);
      }, 200);
      const started = performance.now();
      await page.getByTestId("file-input").setInputFiles(files);
      worker = await cdp.worker("import.worker");
      if (PROFILE) await worker.send("Profiler.enable").then(() => worker?.send("Profiler.start"));
      await page.getByTestId("import-summary").waitFor({ timeout: 3_600_000 });
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      if (PROFILE) {
        const { profile } = await worker.send<{ profile: unknown }>("Profiler.stop");
        writeFileSync(`${PROFILE}.${copies}.cpuprofile`, JSON.stringify(profile));
        console.log(`CPU profile of the import worker: ${PROFILE}.${copies}.cpuprofile`);
      }
      await cdp.detach();
      const examples = await page.getByTestId("import-summary").getAttribute("data-examples");
      console.log(
        `bench fhir import in Chromium: ${copies}x Synthea bulk, ${mib.toFixed(0)} MiB NDJSON, ${examples} examples: ` +
          `${seconds.toFixed(1)} s (with SHA-256 of every file) = ${(mib / seconds).toFixed(1)} MiB/s; ` +
          `renderer RSS ${baseline.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB; ` +
          `import worker JS heap used: median ${median(heaps).toFixed(0)} MiB, peak ${Math.max(...heaps).toFixed(0)} MiB ` +
          `over ${heaps.length} samples`,
      );
    } finally {
      await site.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await coordinator.dispose();
}
