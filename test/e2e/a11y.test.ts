import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { trainUntilDone } from "./site-page";

const AXE_SOURCE = readFileSync(resolve("node_modules/axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core on the page as it is now and saves a screenshot of it under test-results/.
 * axe is evaluated through DevTools (page.evaluate), which the page's Content-Security-Policy does not
 * govern: a <script> tag (addScriptTag) would be refused by script-src 'self', and bypassCSP would test a
 * page without the policy it ships with. Returns "rule: targets" lines, one per violation of any impact.
 */
async function audit(page: Page, screen: string): Promise<string[]> {
  mkdirSync(resolve("test-results"), { recursive: true });
  await page.screenshot({ path: resolve(`test-results/a11y-${screen}.png`), fullPage: true });
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(c: Document, o: object): Promise<unknown> } }).axe;
    const results = (await axe.run(document, { resultTypes: ["violations"] })) as {
      violations: AxeViolation[];
      passes: unknown[];
    };
    if (results.passes.length === 0) throw new Error("axe-core checked nothing on this page.");
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return violations.map(
    (v) =>
      `${screen}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
}

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
