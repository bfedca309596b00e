import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { audit } from "./axe";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { trainUntilDone } from "./site-page";

/**
 * Every screen of the site's path, and the admin page after sign-in, audited by axe-core in real Chromium
 * under the coordinator's Content-Security-Policy; a violation of any impact fails the test.
 */
describe("accessibility (axe-core)", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("finds no violation on the start page, plan, data, trained round with ledger, and admin page", async () => {
    // Prepare: a one-site, one-round federation, trained on WebAssembly.
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = { ...demo, id: "wdbc-a11y", title: "WDBC a11y test", rounds: 1, minSites: 1 };
    const { invites } = await coordinator.storage.createFederation(plan, ["Oslo site"]);
    const inviteUrl = `${coordinator.url}/?invite=${encodeURIComponent(invites[0]?.code as string)}&backend=wasm`;
    site = await launchSite();
    const page = await site.context.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    const found: string[] = [];

    // Execute: walk the path, auditing each screen.
    await page.goto(`${coordinator.url}/`);
    await page.getByRole("heading", { name: "Not enrolled yet" }).waitFor();
    found.push(...(await audit(page, "start")));

    await page.goto(inviteUrl);
    await page.getByTestId("plan-hash").waitFor();
    await page.locator("[data-testid=connection][data-state=online]").waitFor({ state: "attached" });
    found.push(...(await audit(page, "plan")));

    await page.getByTestId("file-input").setInputFiles(resolve("public/demo/wdbc-site1.csv"));
    const summary = page.getByTestId("import-summary");
    await summary.waitFor({ timeout: 60_000 });
    found.push(...(await audit(page, "data")));

    await trainUntilDone(page, Number(await summary.getAttribute("data-holdout")), 300_000);
    await page.getByTestId("download").waitFor();
    await page.locator("[data-testid=ledger] tbody tr").first().waitFor();
    // The network log's table is audited too: open its <details>.
    await page.locator("[data-testid=network-log] summary").click();
    found.push(...(await audit(page, "trained")));
    // A control: an unlabelled field added to the same page is caught, so the audit can fail.
    await page.evaluate(() => document.querySelector("main")?.append(document.createElement("input")));
    const control = await audit(page, "control");
    await page.evaluate(() => document.querySelector("main > input:last-child")?.remove());

    const admin = await site.context.newPage();
    await admin.goto(coordinator.adminUrl);
    found.push(...(await audit(admin, "admin-sign-in")));
    await admin.locator("#admin-token").fill(coordinator.adminToken as string);
    await admin.locator("[data-testid=token-form] button[type=submit]").click();
    await admin.getByTestId("federations").waitFor();
    await admin.getByRole("heading", { name: `Federation: ${demo.title}` }).waitFor();
    found.push(...(await audit(admin, "admin")));

    // Assert
    expect(found).toEqual([]);
    expect(control.join("\n")).toContain("control: label (critical)");
  });
});
