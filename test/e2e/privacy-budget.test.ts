import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { planPrivacy } from "../../src/core/privacy/budget";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { enrollAndImport, ledgerOnPage } from "./site-page";

/**
 * A site keeps its own privacy books in a real browser: with a budget that covers 2 of the plan's 3 rounds,
 * it sends 2 releases, then refuses round 3 in plain words; the ledger survives a reload.
 */
describe("privacy budget end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("stops before the round that would spend more than the budget, and shows what was spent", async () => {
    // Prepare: the demo plan's DP-SGD spends epsilon 2.40 per row in 2 rounds and 2.99 in 3 (delta 1e-5)
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = {
      ...demo,
      id: "budget-e2e",
      minSites: 1,
      privacy: { ...demo.privacy, epsilonBudget: 2.5 },
    };
    const twoRounds = planPrivacy(plan, 100).epsilonPerRound[1] as number;
    const { federation, invites } = await coordinator.storage.createFederation(plan, ["Budget site"]);
    site = await launchSite();
    const page = await site.context.newPage();
    await enrollAndImport(
      page,
      `${coordinator.url}/?invite=${invites[0]?.code}&backend=wasm`,
      resolve("public/demo/wdbc-site1.csv"),
    );
    expect(await page.getByTestId("plan-privacy").textContent()).toContain(
      "this site will take part in at most 2 of them",
    );

    // Execute
    await page.getByTestId("join").click();
    await page.waitForFunction(
      () => {
        const s = document.querySelector("[data-testid=status]")?.getAttribute("data-state");
        return s === "stopped" || s === "error" || s === "done";
      },
      undefined,
      { timeout: 300_000, polling: 250 },
    );

    // Assert
    expect(await page.getByTestId("status").getAttribute("data-state")).toBe("stopped");
    expect(await page.getByTestId("privacy-stop").textContent()).toContain(
      "This site does not take part in round 3: its privacy budget would run out.",
    );
    const ledger = await ledgerOnPage(page);
    expect(ledger.rows.map((r) => r.round)).toEqual([1, 2]);
    expect(ledger.spent).toBeCloseTo(twoRounds, 12);
    expect((await coordinator.storage.getFederation(federation.id))?.currentRound).toBe(3);
    expect(await coordinator.storage.getModelVersions(federation.id)).toEqual([0, 1, 2]);
    // The books survive a reload: IndexedDB holds the ledger, the page shows it again.
    await page.reload();
    await page.getByTestId("plan-hash").waitFor();
    const again = await ledgerOnPage(page);
    expect(again.rows).toEqual(ledger.rows);
    expect(again.spent).toBe(ledger.spent);
  });
});
