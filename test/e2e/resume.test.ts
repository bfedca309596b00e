import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdminRoundsResponse } from "../../src/core/admin-protocol";
import { parsePlan } from "../../src/core/plan";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { enrollAndImport, ledgerOnPage } from "./site-page";

/** All rows of one object store of the page's IndexedDB, read with the raw IndexedDB API. */
function readStore<T>(page: Page, store: string): Promise<T[]> {
  return page.evaluate(
    (name) =>
      new Promise<T[]>((done, fail) => {
        const open = indexedDB.open("fedward");
        open.onerror = () => fail(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction(name).objectStore(name).getAll();
          all.onerror = () => fail(all.error);
          all.onsuccess = () => {
            done(all.result as T[]);
            open.result.close();
          };
        };
      }),
    store,
  );
}

interface Saved {
  round: number;
  epoch: number;
  epochs: number;
}

/** Waits until the training worker has checkpointed at least `epoch` epochs of `round`; returns that row. */
async function checkpointed(page: Page, round: number, epoch: number): Promise<Saved> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [row] = await readStore<Saved>(page, "checkpoints");
    if (row && row.round === round && row.epoch >= epoch) return row;
    if (Date.now() > deadline) throw new Error(`No checkpoint of round ${round} epoch ${epoch} in 120 s.`);
    await page.waitForTimeout(50);
  }
}

async function untilDone(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const s = document.querySelector("[data-testid=status]")?.getAttribute("data-state");
      return s === "done" || s === "error" || s === "stopped";
    },
    undefined,
    { timeout: 300_000, polling: 250 },
  );
  const state = await page.getByTestId("status").getAttribute("data-state");
  if (state !== "done") {
    throw new Error(
      `The site ended "${state}": ${(await page.locator(".error").allTextContents()).join(" ")}`,
    );
  }
}

/**
 * Training survives a reload and a closed tab, in real Chromium on wasm: a site of a 2-round federation
 * (minSites 1) is reloaded in the middle of round 1's training and its tab is closed in the middle of
 * round 2's; each time the page opened again continues by itself from the worker's last checkpoint, and the
 * coordinator gets exactly one update per round from it.
 */
describe("resuming training end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("resumes a round after a reload and after a closed tab, and uploads once per round", async () => {
    // Prepare: the demo plan with 1500 DP-SGD steps a round (checkpointed every 150), so that a round trains
    // for seconds; its epsilon is no demo's, so the budget is raised to fit.
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = {
      ...demo,
      id: "resume-e2e",
      minSites: 1,
      rounds: 2,
      privacy: { ...demo.privacy, stepsPerRound: 1500, epsilonBudget: 1000 },
    };
    const { federation, invites } = await coordinator.storage.createFederation(plan, ["Resume site"]);
    site = await launchSite();
    const uploads: string[] = [];
    site.context.on("request", (r) => {
      const match = /\/rounds\/(\d+)\/update$/.exec(r.url());
      if (match && r.method() === "POST") uploads.push(match[1] as string);
    });
    let page = await site.context.newPage();
    await enrollAndImport(
      page,
      `${coordinator.url}/?invite=${invites[0]?.code}&backend=wasm`,
      resolve("public/demo/wdbc-site1.csv"),
    );

    // Execute: reload during round 1, close the tab during round 2 and open the app in a new one
    const started = Date.now();
    await page.getByTestId("join").click();
    const before1 = await checkpointed(page, 1, 10);
    await page.reload();
    const firstReloadAt = Date.now();
    const before2 = await checkpointed(page, 2, 10);
    await page.close();
    page = await site.context.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await page.goto(`${coordinator.url}/?backend=wasm`);
    await untilDone(page);

    // Assert
    const rounds = await readStore<{ round: number; resumedFromEpoch?: number }>(page, "rounds");
    const resumed = rounds.map((r) => [r.round, r.resumedFromEpoch]);
    console.log(
      `e2e resume: steps=${plan.privacy.stepsPerRound} saved_before_reload=${before1.epoch} saved_before_close=${before2.epoch} ` +
        `resumed_from=${JSON.stringify(resumed)} uploads=${JSON.stringify(uploads)} ` +
        `round1_until_reload_s=${((firstReloadAt - started) / 1000).toFixed(1)} total_s=${((Date.now() - started) / 1000).toFixed(1)}`,
    );
    const r1 = rounds.find((r) => r.round === 1)?.resumedFromEpoch ?? 0;
    const r2 = rounds.find((r) => r.round === 2)?.resumedFromEpoch ?? 0;
    // Resumed from the checkpoint seen before the reload or a later one (training went on until the page went).
    expect(r1).toBeGreaterThanOrEqual(before1.epoch);
    expect(r2).toBeGreaterThanOrEqual(before2.epoch);
    expect(r1).toBeLessThanOrEqual(plan.privacy.stepsPerRound as number);
    expect(r2).toBeLessThanOrEqual(plan.privacy.stepsPerRound as number);
    expect(uploads).toEqual(["1", "2"]);
    const admin = await fetch(`${coordinator.url}/api/admin/federations/${federation.id}/rounds`, {
      headers: { authorization: `Bearer ${coordinator.adminToken}` },
    });
    const history = (await admin.json()) as AdminRoundsResponse;
    expect(history.rounds.map((r) => [r.round, r.accepted.length, r.refused.length])).toEqual([
      [1, 1, 0],
      [2, 1, 0],
    ]);
    const ledger = await ledgerOnPage(page);
    expect(ledger.stored.map((r) => r.round)).toEqual([1, 2]);
    expect(ledger.rows.map((r) => r.outcome)).toEqual(["accepted", "accepted"]);
    expect(await readStore(page, "checkpoints")).toEqual([]);
    expect(await coordinator.storage.getModelVersions(federation.id)).toEqual([0, 1, 2]);
    // The site no longer counts as joined: the next visit does not start anything.
    const [enrollment] = await readStore<{ joinedAt?: number }>(page, "enrollments");
    expect(enrollment?.joinedAt).toBeUndefined();
  });
});
