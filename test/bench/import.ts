/**
 * `npm run bench` (import part): the site's CSV import in Debian's Chromium, through the real file input,
 * the import worker, papaparse and IndexedDB shards. The file is the demo's WDBC rows repeated to 200,000
 * examples (about 35 MB). Prints examples/s and MiB/s from the import's own timing (parse and store) and
 * the wall time including the file's SHA-256, medians over 3 imports.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePlan } from "../../src/core/plan";
import { launchSite } from "../e2e/browser";
import { freshCoordinator } from "../e2e/coordinator";
import { median } from "./timing";

const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 200_000);
const RUNS = 3;

const [header, ...rows] = readFileSync("public/demo/wdbc-site1.csv", "utf8").trim().split("\n");
const dir = mkdtempSync(join(tmpdir(), "fedward-bench-import-"));
const file = join(dir, "big.csv");
const lines = [header as string];
for (let i = 0; i < ROWS; i++) lines.push(rows[i % rows.length] as string);
writeFileSync(file, `${lines.join("\n")}\n`);
const mib = statSync(file).size / 2 ** 20;

const coordinator = await freshCoordinator();
const site = await launchSite();
try {
  const plan = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
  const { invites } = await coordinator.storage.createFederation(
    { ...plan, id: "bench-import", minSites: 1 },
    ["Bench"],
  );
  const page = await site.context.newPage();
  await page.goto(`${coordinator.url}/?invite=${invites[0]?.code}`);
  await page.getByTestId("plan-hash").waitFor();
  const importMs: number[] = [];
  const wallMs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    // A file of another name each run: the same path again would not fire the input's change event.
    const copy = join(dir, `big-${run}.csv`);
    copyFileSync(file, copy);
    await page.getByTestId("file-input").setInputFiles(copy);
    // Each run replaces the dataset; wait for this run's summary (a fresh manifest element).
    await page.waitForFunction(
      (n) =>
        document.querySelectorAll("[data-testid=manifest]").length === 1 &&
        document.querySelector("[data-testid=import-summary]")?.getAttribute("data-examples") === String(n) &&
        document.querySelector("[data-testid=import-progress]")?.textContent === "",
      ROWS,
      { timeout: 600_000, polling: 100 },
    );
    wallMs.push(performance.now() - started);
    const text = (await page.getByTestId("manifest").innerText()) ?? "";
    importMs.push(Number(/imported in ([\d.]+) s/.exec(text)?.[1]) * 1000);
  }
  const parse = median(importMs);
  const wall = median(wallMs);
  console.log(
    `bench import csv in Chromium: ${ROWS} examples, ${mib.toFixed(1)} MiB; parse+store median ${(parse / 1000).toFixed(2)} s = ` +
      `${Math.round((ROWS / parse) * 1000)} examples/s, ${((mib / parse) * 1000).toFixed(1)} MiB/s; ` +
      `wall with SHA-256 median ${(wall / 1000).toFixed(2)} s = ${Math.round((ROWS / wall) * 1000)} examples/s`,
  );
} finally {
  await site.close();
  await coordinator.dispose();
  rmSync(dir, { recursive: true, force: true });
}
