import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paramCount, parsePlan } from "../../src/core/plan";
import { planPrivacy } from "../../src/core/privacy/budget";
import { dpSgdGrid } from "../../src/core/privacy/dp-sgd";
import { clippedGradientSum } from "../../workers/train/per-example";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { enrollAndImport, trainUntilDone } from "./site-page";

/**
 * The noise a DP-SGD upload carries is the noise the plan promises, measured on what the coordinator
 * received from a real site (Chromium, the real training worker on wasm): one round of one full-batch SGD
 * step (q = 1), so the upload is delta = -lr (S + noise) / N with S the clipped gradient sum at the global
 * model over the site's training rows. The test reads those rows back from the site's IndexedDB, computes
 * S in Node with the same per-example code, and recovers the noise the worker added: its std must be
 * z * C (z = 2.5 and C = 0.4, so std and variance, or z and 2z, cannot be confused), its mean 0.
 */
describe("DP-SGD noise in a real upload", () => {
  const dir = mkdtempSync(join(tmpdir(), "fedward-noise-plan-"));
  const demo = JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8"));
  const raw = {
    ...demo,
    id: "wdbc-noise-check",
    title: "WDBC noise check (one full-batch DP-SGD step)",
    training: { optimizer: "sgd", learningRate: 1 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 0.4,
      noiseMultiplier: 2.5,
      stepsPerRound: 1,
      samplingRate: 1,
      delta: 1e-5,
      epsilonBudget: 10,
    },
    rounds: 1,
    minSites: 1,
  };
  const plan = parsePlan(raw);
  const planFile = join(dir, "plan.json");
  writeFileSync(planFile, JSON.stringify(raw));
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator({ DEMO_PLAN: planFile, DEMO_SITES: "1" });
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("has std z·C around the clipped sum, and the ledger says so", async () => {
    // Prepare
    const federationId = coordinator.invites[0]?.federationId as string;
    site = await launchSite();
    const page = await site.context.newPage();
    const url = `${coordinator.invites[0]?.url}&backend=wasm`;
    const holdout = await enrollAndImport(page, url, resolve("public/demo/wdbc-site1.csv"));

    // Execute
    await trainUntilDone(page, holdout, 240_000);

    // Assert: the upload, as the coordinator holds it (one site: the new model is global + its delta)
    const before = (await coordinator.storage.getModel(federationId, 0)) as Float32Array;
    const after = (await coordinator.storage.getModel(federationId, 1)) as Float32Array;
    const train = await page.evaluate(
      () =>
        new Promise<{ x: number[]; y: number[] }>((done, fail) => {
          const open = indexedDB.open("fedward");
          open.onerror = () => fail(open.error);
          open.onsuccess = () => {
            const all = open.result.transaction("shards").objectStore("shards").getAll();
            all.onerror = () => fail(all.error);
            all.onsuccess = () => {
              const rows = (all.result as { split: string; x: Float32Array; y: Float32Array }[]).filter(
                (s) => s.split === "train",
              );
              done({ x: rows.flatMap((s) => Array.from(s.x)), y: rows.flatMap((s) => Array.from(s.y)) });
              open.result.close();
            };
          };
        }),
    );
    const n = train.y.length;
    const d = paramCount(plan);
    const { effectiveClip, grid } = dpSgdGrid(plan.privacy, d);
    await tf.setBackend("cpu");
    const { sum } = await clippedGradientSum(
      plan,
      before,
      Float32Array.from(train.x),
      Float32Array.from(train.y),
      undefined,
      effectiveClip,
    );
    const noise = Float64Array.from(sum, (s, i) => -((after[i] as number) - (before[i] as number)) * n - s);
    const mean = noise.reduce((a, v) => a + v, 0) / d;
    const std = Math.sqrt(noise.reduce((a, v) => a + (v - mean) ** 2, 0) / (d - 1));
    const promised = 2.5 * 0.4;
    console.log(
      `e2e dp-sgd noise: weights=${d} rows=${n} noise_std=${std.toFixed(4)} promised=${promised} mean=${mean.toFixed(4)}`,
    );
    // 257 draws: the sample std is within 15% of the truth far beyond 4 standard errors (about 4.4% each).
    expect(std).toBeGreaterThan(promised * 0.85);
    expect(std).toBeLessThan(promised * 1.15);
    expect(Math.abs(mean)).toBeLessThan((4 * promised) / Math.sqrt(d));

    // The ledger row records what the plan promises: sigma = z C, the grid, q = 1, one step, and epsilon.
    const row = page.locator("[data-testid=ledger] tbody tr").first();
    expect(await row.getAttribute("data-mechanism")).toBe("dp-sgd");
    expect(Number(await row.getAttribute("data-sigma"))).toBeCloseTo(promised, 12);
    expect(Number(await row.getAttribute("data-grid"))).toBe(grid);
    expect(Number(await row.getAttribute("data-steps"))).toBe(1);
    expect(Number(await row.getAttribute("data-sampling-rate"))).toBe(1);
    expect(Number(await row.getAttribute("data-epsilon-after"))).toBe(planPrivacy(plan, n).epsilonAllRounds);
  });
});
