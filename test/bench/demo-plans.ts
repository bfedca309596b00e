/**
 * `npx tsx test/bench/demo-plans.ts`: each demo plan as a workshop runs it. A real coordinator started with
 * DEMO_PLAN and DEMO_SITES=2, two Debian Chromium browsers with their own profiles, each opening its invite
 * (`&backend=wasm`), approving the plan, importing its data through the real file or folder input, joining
 * and training every round of the plan. Prints one line per run with the ε the sites' ledgers show after
 * the last round and the accuracy pooled over both sites' held-out splits, one line per site, and mean ± sd
 * over BENCH_REPEATS runs (default 1). BENCH_PLANS runs a subset: comma-separated plan ids or file stems
 * (wdbc, synthea-hypertension, digits). A run that fails prints what the pages said and the next one goes on.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { type Plan, parsePlan, privacyUnit } from "../../src/core/plan";
import { launchSite, type Site } from "../e2e/browser";
import { freshCoordinator } from "../e2e/coordinator";
import { approvePlan, ledgerOnPage, pooled, type SiteResult, trainUntilDone } from "../e2e/site-page";

const FHIR = resolve("../shared/data/fhir");
const files = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map((name) => join(dir, name));

interface SiteData {
  /** What the site imports, in words for the output. */
  source: string;
  input: "file-input" | "folder-input";
  paths: () => string[] | string;
}

interface Demo {
  stem: string;
  sites: [SiteData, SiteData];
  note?: string;
}

const DEMOS: Demo[] = [
  {
    stem: "wdbc",
    sites: [1, 2].map((k) => ({
      source: `wdbc-site${k}.csv`,
      input: "file-input" as const,
      paths: () => [resolve(`public/demo/wdbc-site${k}.csv`)],
    })) as [SiteData, SiteData],
  },
  {
    stem: "synthea-hypertension",
    sites: [
      { source: "synthea-r4-bulk", input: "file-input", paths: () => files(join(FHIR, "synthea-r4-bulk")) },
      {
        source: "synthea-r4-bundles",
        input: "file-input",
        paths: () => files(join(FHIR, "synthea-r4-bundles")),
      },
    ],
    // README "Importing data": the bulk export and the bundles are the same Synthea patients.
    note:
      "both sites hold the same 199 Synthea patients (site 1 as the Bulk Data export, site 2 as 200 Bundles): " +
      "every patient is at both sites, the two held-out splits are the same patients, and the pooled figures " +
      "count each held-out patient twice",
  },
  {
    stem: "digits",
    sites: [1, 2].map((k) => ({
      source: `digits/site${k}`,
      input: "folder-input" as const,
      paths: () => resolve(`public/demo/digits/site${k}`),
    })) as [SiteData, SiteData],
  },
];

interface SiteRun extends SiteResult {
  examples: number;
  epsilon: number;
  units: number;
  importSeconds: number;
  trainSeconds: number;
}

interface Run {
  epsilon: number;
  accuracyBefore: number;
  accuracyAfter: number;
  lossAfter: number;
  holdout: number;
  seconds: number;
  sites: SiteRun[];
}

const REPEATS = Number(process.env.BENCH_REPEATS ?? 1);
const wanted = process.env.BENCH_PLANS?.split(",").map((s) => s.trim());
const plans = DEMOS.map((demo) => {
  const path = resolve(`public/demo/${demo.stem}-plan.json`);
  return { demo, path, plan: parsePlan(JSON.parse(readFileSync(path, "utf8"))) };
}).filter(({ demo, plan }) => !wanted || wanted.includes(plan.id) || wanted.includes(demo.stem));
if (!Number.isInteger(REPEATS) || REPEATS < 1)
  throw new Error(`BENCH_REPEATS is "${process.env.BENCH_REPEATS}"; set it to a whole number of 1 or more.`);
if (plans.length === 0)
  throw new Error(
    `BENCH_PLANS "${process.env.BENCH_PLANS}" names no demo plan; use wdbc, synthea-hypertension or digits.`,
  );

/** What a page shows when something went wrong: every status, error and notice text, and page errors. */
async function whatThePageSaid(page: Page, errors: string[]): Promise<string> {
  const texts = await page
    .locator("[data-testid=status], .error, .notice, [data-testid=import-progress], [data-testid=problems]")
    .evaluateAll((els) =>
      els.map(
        (e) => `${e.getAttribute("data-testid") ?? e.className}: ${(e as HTMLElement).innerText.trim()}`,
      ),
    )
    .catch((e: Error) => [`(could not read the page: ${e.message})`]);
  return [...texts.filter((t) => !t.endsWith(": ")), ...errors.map((e) => `page error: ${e}`)].join(" | ");
}

/** Opens the invite, approves the plan and imports the site's data; returns the summary's counts. */
async function importAt(page: Page, url: string, data: SiteData) {
  await page.goto(`${url}&backend=wasm`);
  await page.getByTestId("plan-hash").waitFor();
  await approvePlan(page);
  const started = performance.now();
  await page.getByTestId(data.input).setInputFiles(data.paths());
  const summary = page.getByTestId("import-summary");
  await summary.or(page.locator(".error")).first().waitFor({ timeout: 300_000 });
  if (!(await summary.isVisible())) throw new Error(`The import of ${data.source} did not finish.`);
  return {
    examples: Number(await summary.getAttribute("data-examples")),
    holdout: Number(await summary.getAttribute("data-holdout")),
    // The first sentence: counts and what was left out (the per-file manifest follows it).
    text: (await summary.innerText())
      .replace(/\s+/g, " ")
      .trim()
      .split(/(?<=\.) /)[0]
      ?.slice(0, 300),
    seconds: (performance.now() - started) / 1000,
  };
}

async function runOnce(demo: Demo, path: string, plan: Plan): Promise<Run> {
  const started = performance.now();
  const sites: Site[] = [];
  const coordinator = await freshCoordinator({ DEMO_PLAN: path, DEMO_SITES: "2" });
  const pages: Page[] = [];
  const errors: string[][] = [[], []];
  try {
    for (let i = 0; i < 2; i++) sites.push(await launchSite());
    for (const [i, site] of sites.entries()) {
      const page = await site.context.newPage();
      page.on("pageerror", (e) => errors[i]?.push(e.message));
      pages.push(page);
    }
    const imports = await Promise.all(
      pages.map((page, i) =>
        importAt(page, coordinator.invites[i]?.url as string, demo.sites[i] as SiteData),
      ),
    );
    for (const [i, s] of imports.entries())
      console.log(
        `bench demo-plans import plan=${plan.id} site=${i + 1} source=${demo.sites[i]?.source}: ${s.text}`,
      );
    const trainStarted = performance.now();
    const results = await Promise.all(
      pages.map(async (page, i) => {
        const result = await trainUntilDone(page, imports[i]?.holdout as number, 300_000);
        const trainSeconds = (performance.now() - trainStarted) / 1000;
        const ledger = await ledgerOnPage(page);
        const last = page.locator("[data-testid=ledger] tbody tr").last();
        const bad = ledger.rows.filter((r) => r.outcome !== "accepted");
        if (ledger.rows.length !== plan.rounds || bad.length > 0)
          throw new Error(
            `Site ${i + 1}'s ledger has ${ledger.rows.length} rows: ${JSON.stringify(ledger.rows)}`,
          );
        return {
          ...result,
          examples: imports[i]?.examples as number,
          epsilon: ledger.spent,
          units: Number(await last.getAttribute("data-units")),
          importSeconds: imports[i]?.seconds as number,
          trainSeconds,
        };
      }),
    );
    const lossAfter =
      results.reduce((s, r) => s + r.lossAfter * r.holdout, 0) / results.reduce((s, r) => s + r.holdout, 0);
    return {
      // The plan fixes the sampling rate, so both sites' ledgers show the same ε; the larger, to be safe.
      epsilon: Math.max(...results.map((r) => r.epsilon)),
      accuracyBefore: pooled(results, "accuracyBefore"),
      accuracyAfter: pooled(results, "accuracyAfter"),
      lossAfter,
      holdout: results.reduce((s, r) => s + r.holdout, 0),
      seconds: (performance.now() - started) / 1000,
      sites: results,
    };
  } catch (e) {
    const said = await Promise.all(pages.map((p, i) => whatThePageSaid(p, errors[i] ?? [])));
    const where = said.map((s, i) => `site ${i + 1} said: ${s}`).join("\n  ");
    throw new Error(`${(e as Error).message}\n  ${where}`);
  } finally {
    await Promise.allSettled(sites.map((s) => s.close()));
    await coordinator.dispose();
  }
}

const f4 = (x: number) => x.toFixed(4);
const delta = (plan: Plan) => plan.privacy.delta.toExponential().replace("e-", "e-0");

function meanSd(xs: number[], digits: number): string {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return `${mean.toFixed(digits)}±${sd.toFixed(digits)}`;
}

let failed = 0;
const began = performance.now();
for (const { demo, path, plan } of plans) {
  const unit = privacyUnit(plan);
  if (demo.stem === "synthea-hypertension" && !existsSync(FHIR)) {
    console.log(`bench demo-plans plan=${plan.id} skipped: ${FHIR} is absent.`);
    continue;
  }
  if (demo.note) console.log(`bench demo-plans note plan=${plan.id}: ${demo.note}`);
  const runs: Run[] = [];
  for (let r = 1; r <= REPEATS; r++) {
    try {
      const run = await runOnce(demo, path, plan);
      runs.push(run);
      console.log(
        `bench demo-plans plan=${plan.id} unit=${unit} sites=2 rounds=${plan.rounds} epsilon=${f4(run.epsilon)} ` +
          `delta=${delta(plan)} accuracy_before=${f4(run.accuracyBefore)} accuracy_after=${f4(run.accuracyAfter)} ` +
          `loss_after=${f4(run.lossAfter)} holdout=${run.holdout} seconds=${run.seconds.toFixed(1)} repeat=${r}`,
      );
      for (const [i, s] of run.sites.entries())
        console.log(
          `bench demo-plans site plan=${plan.id} site=${i + 1} source=${demo.sites[i]?.source} ` +
            `examples=${s.examples} units=${s.units} holdout=${s.holdout} epsilon=${f4(s.epsilon)} ` +
            `accuracy_before=${f4(s.accuracyBefore)} accuracy_after=${f4(s.accuracyAfter)} ` +
            `loss_before=${f4(s.lossBefore)} loss_after=${f4(s.lossAfter)} backend=${s.backend} ` +
            `import_s=${s.importSeconds.toFixed(1)} train_s=${s.trainSeconds.toFixed(1)} repeat=${r}`,
        );
    } catch (e) {
      failed++;
      console.log(`bench demo-plans plan=${plan.id} repeat=${r} FAILED: ${(e as Error).message}`);
    }
  }
  if (runs.length > 1) {
    const of = (key: "epsilon" | "accuracyBefore" | "accuracyAfter" | "lossAfter" | "seconds", d = 4) =>
      meanSd(
        runs.map((run) => run[key]),
        d,
      );
    const perSite = [0, 1]
      .map(
        (i) =>
          `site${i + 1}_accuracy_after=${meanSd(
            runs.map((run) => run.sites[i]?.accuracyAfter as number),
            4,
          )}`,
      )
      .join(" ");
    console.log(
      `bench demo-plans mean plan=${plan.id} unit=${unit} sites=2 rounds=${plan.rounds} repeats=${runs.length} ` +
        `epsilon=${of("epsilon")} delta=${delta(plan)} accuracy_before=${of("accuracyBefore")} ` +
        `accuracy_after=${of("accuracyAfter")} loss_after=${of("lossAfter")} holdout=${runs[0]?.holdout} ` +
        `seconds=${of("seconds", 1)} ${perSite}`,
    );
  }
}
console.log(`bench demo-plans total_s=${((performance.now() - began) / 1000).toFixed(1)} failed=${failed}`);
if (failed > 0) process.exitCode = 1;
