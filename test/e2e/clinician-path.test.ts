import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorClient } from "../../src/client/coordinator";
import { paramCount, parsePlan } from "../../src/core/plan";
import { formatEpsilon, planPrivacy } from "../../src/core/privacy/budget";
import { encodeVector, WireKind } from "../../src/core/wire";
import { audit } from "./axe";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { ledgerOnPage } from "./site-page";

/** The step marked aria-current="step" in the indicator, and each step's state. */
async function steps(page: Page): Promise<{ current: string | null; states: string[] }> {
  const current = await page.locator("[data-testid=steps] li[aria-current=step]").getAttribute("data-step");
  const states = await page
    .locator("[data-testid=steps] li")
    .evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.state ?? ""));
  return { current, states };
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(resolve("test-results"), { recursive: true });
  await page.screenshot({ path: resolve(`test-results/clinician-${name}.png`), fullPage: true });
}

/**
 * The clinician's one path in real Chromium: invite → approve the plan → import the CSV → train 2 rounds with
 * the upload review on (send round 1, withhold round 2) → the ledger shows round 2 withheld and ε counts only
 * round 1 → the model card is downloaded and says so. A second site (here in Node) closes round 2.
 */
describe("the clinician's path", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("approves the plan, reviews each upload, withholds one, and downloads a model card", async () => {
    // Prepare: rounds 2, one site enough per round; site B only closes round 2.
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = { ...demo, id: "wdbc-path", title: "WDBC clinician path", rounds: 2, minSites: 1 };
    const { federation, invites } = await coordinator.storage.createFederation(plan, ["Oslo site", "Site B"]);
    const siteB = await new CoordinatorClient(coordinator.url).enroll(invites[1]?.code as string);
    site = await launchSite();
    const page = await site.context.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    const found: string[] = [];

    // Execute and assert, step by step.
    // 1. Join: the plan in plain words, its SHA-256, and Join training off until approved.
    await page.goto(
      `${coordinator.url}/?invite=${encodeURIComponent(invites[0]?.code as string)}&backend=wasm`,
    );
    await page.getByTestId("plan-hash").waitFor();
    await page.locator("[data-testid=connection][data-state=online]").waitFor({ state: "attached" });
    expect(await steps(page)).toEqual({
      current: "Join",
      states: ["current", "to do", "to do", "to do", "to do"],
    });
    expect(await page.getByTestId("join").isDisabled()).toBe(true);
    expect(await page.getByTestId("join-why").textContent()).toContain("until you approve the plan");
    found.push(...(await audit(page, "path-join")));
    await shot(page, "1-join");
    await page.getByTestId("approve-plan").click();
    await page.locator("[data-testid=plan-approval][data-approved=true]").waitFor({ state: "attached" });
    // The approval is stored with the plan's hash in IndexedDB: it holds after a reload.
    await page.reload();
    await page.locator("[data-testid=plan-approval][data-approved=true]").waitFor({ state: "attached" });
    expect((await steps(page)).current).toBe("Data");
    expect(await page.getByTestId("join-why").textContent()).toContain("until this site's data is imported");

    // 2. Data
    await page.getByTestId("file-input").setInputFiles(resolve("public/demo/wdbc-site1.csv"));
    await page.getByTestId("import-summary").waitFor({ timeout: 60_000 });
    expect(await steps(page)).toEqual({
      current: "Train",
      states: ["done", "done", "current", "to do", "to do"],
    });
    expect(await page.getByTestId("join").isDisabled()).toBe(false);
    await shot(page, "2-data");

    // 4. Privacy: review each upload (off by default)
    expect(await page.getByTestId("review-uploads").isChecked()).toBe(false);
    await page.getByTestId("review-uploads").check();

    // 3. Train: round 1 is reviewed and sent
    await page.getByTestId("join").click();
    const review1 = page.locator("[data-testid=upload-review][data-round='1']");
    await review1.waitFor({ timeout: 300_000 });
    expect(await page.getByTestId("backend-advice").textContent()).toMatch(/training will use WebAssembly/);
    expect(Number(await page.getByTestId("round-progress").getAttribute("value"))).toBe(1);
    expect(await page.getByTestId("progress").textContent()).toMatch(/examples\/s · .* left$/);
    expect(await review1.textContent()).toContain((await review1.getAttribute("data-sha256")) as string);
    found.push(...(await audit(page, "path-review")));
    await shot(page, "3-review-round-1");
    await page.getByTestId("send-upload").click();

    // Round 2 is reviewed and withheld; site B then closes the round alone.
    const review2 = page.locator("[data-testid=upload-review][data-round='2']");
    await review2.waitFor({ timeout: 300_000 });
    await shot(page, "3-review-round-2");
    await page.getByTestId("withhold-upload").click();
    await page.locator("[data-testid=ledger] tbody tr[data-status=withheld]").waitFor({ state: "attached" });
    const zeros = new Float32Array(paramCount(plan));
    await new CoordinatorClient(coordinator.url, siteB.token).upload(
      federation.id,
      2,
      encodeVector({ kind: WireKind.update, round: 2, numExamples: 0, values: zeros }),
    );
    await page.locator("[data-testid=status][data-state=done]").waitFor({ timeout: 120_000 });
    await page.locator("[data-testid=loss-chart][data-points='3']").waitFor({ state: "attached" });
    await shot(page, "3-train-done");

    // 4. Privacy: round 2 withheld, ε of round 1 only
    const ledger = await ledgerOnPage(page);
    expect(ledger.rows.map((r) => r.round)).toEqual([1, 2]);
    expect(ledger.rows[0]?.outcome).toBe("accepted");
    expect(ledger.rows[1]?.outcome).toMatch(/^withheld/);
    // One DP-SGD round's epsilon per row (the withheld one counts nothing).
    const oneRelease = planPrivacy(plan, 100).epsilonPerRound[0] as number;
    expect(ledger.spent).toBeCloseTo(oneRelease, 12);
    expect(await page.getByTestId("privacy-spent").getAttribute("data-withheld")).toBe("1");
    expect(await page.locator("[data-testid=rounds] tr[data-round='2'] td:last-child").textContent()).toBe(
      "not sent: withheld by this site",
    );
    await page.locator("#step-privacy").scrollIntoViewIfNeeded();
    await shot(page, "4-privacy");

    // 5. Model: metrics per version, the model card
    expect(await steps(page)).toEqual({
      current: "Model",
      states: ["done", "done", "done", "done", "current"],
    });
    expect(await page.locator("[data-testid=model-metrics] tbody tr").count()).toBe(3);
    await page.locator("[data-testid=accuracy-chart][data-points='3']").waitFor({ state: "attached" });
    const download = page.waitForEvent("download");
    await page.getByTestId("model-card-download").click();
    const card = readFileSync(await (await download).path(), "utf8");
    expect((await download).suggestedFilename()).toBe("model-card.md");
    expect(card).toContain("# Model card: WDBC clinician path");
    expect(card).toContain("The final model is version 2, after 2 rounds.");
    expect(card).toContain("This site sent its update in 1 round(s); it withheld round(s) 2 (not sent).");
    expect(card).toContain(`This site spent ε = ${formatEpsilon(oneRelease)} per row of its budget`);
    expect(card).toMatch(/Model version 2: accuracy \d+\.\d%/);
    expect(await page.getByTestId("model-card").textContent()).toBe(card);
    found.push(...(await audit(page, "path-model")));
    await shot(page, "5-model");
    expect(found).toEqual([]);
  });
});
