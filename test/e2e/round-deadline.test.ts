import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { approvePlan, enrollAndImport, ledgerOnPage } from "./site-page";

/** Resolves once the page's status line matches `pattern` (polled: it changes with every round). */
function statusMatches(page: Page, pattern: RegExp, timeout = 120_000) {
  return page.waitForFunction(
    (source) => new RegExp(source).test(document.querySelector("[data-testid=status]")?.textContent ?? ""),
    pattern.source,
    { timeout, polling: 100 },
  );
}

const done = (page: Page) =>
  page.locator("[data-testid=status][data-state=done]").waitFor({ state: "attached", timeout: 180_000 });

/**
 * Rounds that close at their deadlines, in real Chromium: three hospitals, 12-second rounds, a quorum of 2.
 * All three send round 1; site C withholds round 2 and site B closes its tab in round 3; both rounds close at
 * their deadline with the two others, the federation finishes, and the pages say what happened.
 */
describe("round deadlines end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  const sites: Site[] = [];

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await Promise.all(sites.map((s) => s.close()));
    await coordinator?.dispose();
  });

  it("closes rounds at their deadlines when a site withholds its update or closes its tab, and finishes", async () => {
    // Prepare
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = {
      ...demo,
      id: "wdbc-deadline",
      title: "WDBC round deadlines",
      rounds: 3,
      minSites: 2,
      roundDeadline: { minutes: 0.2 },
    };
    const { federation, invites } = await coordinator.storage.createFederation(plan, ["A", "B", "C"]);
    for (let i = 0; i < 3; i++) sites.push(await launchSite());
    const [a, b, c] = (await Promise.all(sites.map((s) => s.context.newPage()))) as [Page, Page, Page];
    const files = ["wdbc-site1.csv", "wdbc-site2.csv", "wdbc-site3.csv"];
    await Promise.all(
      [a, b, c].map((page, i) =>
        enrollAndImport(
          page,
          `${coordinator.url}/?invite=${invites[i]?.code}&backend=wasm`,
          resolve(`public/demo/${files[i]}`),
        ),
      ),
    );
    // Round 1 opened with the federation, while the sites enrolled: give it time for all three.
    await coordinator.storage.roundAction(federation.id, {
      kind: "deadline",
      round: 1,
      deadline: Date.now() + 5 * 60_000,
    });
    // B and C review each upload; B closes its tab while its round-3 review waits (nothing sent for round 3).
    for (const page of [b, c]) await page.getByTestId("review-uploads").check();
    const review = (page: Page, round: number) =>
      page.locator(`[data-testid=upload-review][data-round='${round}']`).waitFor({ timeout: 120_000 });

    // Execute: everyone joins; C sends round 1, withholds round 2, sends round 3; B leaves in round 3.
    for (const page of [a, b, c]) {
      await approvePlan(page);
      await page.getByTestId("join").click();
    }
    for (const page of [b, c]) {
      await review(page, 1);
      await page.getByTestId("send-upload").click();
    }
    await review(b, 2);
    await b.getByTestId("send-upload").click();
    await review(c, 2);
    await c.getByTestId("withhold-upload").click();
    const waitingInRound2 = statusMatches(
      a,
      /^Round 2 of 3: update sent\. 2 of 3 sites have sent their update; the round closes when the other site has sent or at .* \(in \d+ s\), whichever comes first\.( The deadline has moved on .*)?$/,
    );
    const withheldText = statusMatches(
      c,
      /^Round 2 of 3: this site chose not to send its update\. \d of 3 sites/,
    );
    await Promise.all([waitingInRound2, withheldText]);
    await review(b, 3);
    await b.close();
    await review(c, 3);
    await c.getByTestId("send-upload").click();
    await Promise.all([done(a), done(c)]);

    // Assert: the coordinator closed round 1 when all three had sent, rounds 2 and 3 at their deadlines.
    const rounds = await coordinator.storage.admin.listRounds(federation.id, 4, 3);
    expect(rounds.map((r) => [r.round, r.accepted.length, r.closeReason])).toEqual([
      [1, 3, "all-reported"],
      [2, 2, "deadline"],
      [3, 2, "deadline"],
    ]);
    expect(await coordinator.storage.getFederation(federation.id)).toMatchObject({ status: "done" });
    // A's ledger: three releases, each with the coordinator's receipt of the model version it went into.
    const ledgerA = await ledgerOnPage(a);
    expect(ledgerA.rows.map((r) => [r.round, r.outcome])).toEqual([
      [1, "accepted"],
      [2, "accepted"],
      [3, "accepted"],
    ]);
    const counted = await a
      .locator("[data-testid=ledger] tbody tr")
      .evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.modelVersion));
    expect(counted).toEqual(["1", "2", "3"]);
    // C's page says it withheld round 2, and its ledger counts only rounds 1 and 3.
    expect(await c.locator("[data-testid=rounds] tr[data-round='2'] td:last-child").textContent()).toBe(
      "not sent: withheld by this site",
    );
    const ledgerC = await ledgerOnPage(c);
    expect(ledgerC.rows.map((r) => r.outcome)).toEqual([
      "accepted",
      expect.stringMatching(/^withheld/),
      "accepted",
    ]);
  });
});
