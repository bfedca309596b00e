import { mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { apiPaths } from "../../src/core/protocol";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { enrollAndImport, trainUntilDone } from "./site-page";

const SCREENSHOTS = {
  invite: resolve("test-results/admin-invite.png"),
  rounds: resolve("test-results/admin-rounds.png"),
};
const CSP_MESSAGE = /Content Security Policy|Refused to (load|execute|evaluate|apply|connect|create|frame)/i;

interface Violation {
  where: string;
  directive: string;
  /** The blocked URL, or the kind of violation (eval, inline). */
  blocked: string;
  url: string | undefined;
  line: number | undefined;
  column: number | undefined;
}

interface CspIssue {
  code: string;
  details: {
    contentSecurityPolicyIssueDetails?: {
      violatedDirective: string;
      contentSecurityPolicyViolationType: string;
      blockedURL?: string;
      sourceCodeLocation?: { url: string; lineNumber: number; columnNumber: number };
    };
  };
}

interface Channel {
  send(method: string, params?: object): void;
}

/**
 * Chromium reports every CSP violation as a DevTools issue, in the page and in each worker (nested ones
 * too); Playwright's console events miss most of them, and a page's securitypolicyviolation listener
 * misses its workers'. Worker sessions are not flat: messages to and from them travel wrapped in their
 * parent's session, as JSON. Audits.enable replays the issues raised before it.
 */
async function watchCsp(page: Page, found: Violation[]): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  let nextId = 0;
  const workers = new Map<string, (message: { method?: string; params?: unknown }) => void>();
  const top: Channel = {
    send: (method, params = {}) => void cdp.send(method as "Audits.enable", params).catch(() => {}),
  };
  const inWorker = (parent: Channel, sessionId: string): Channel => ({
    send: (method, params = {}) =>
      parent.send("Target.sendMessageToTarget", {
        sessionId,
        message: JSON.stringify({ id: ++nextId, method, params }),
      }),
  });
  const enable = (channel: Channel) => {
    channel.send("Audits.enable");
    channel.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  };
  const onEvent = (channel: Channel, where: string, method: string, params: Record<string, unknown>) => {
    if (method === "Audits.issueAdded") {
      const { code, details } = params.issue as CspIssue;
      const d = details.contentSecurityPolicyIssueDetails;
      if (code !== "ContentSecurityPolicyIssue" || !d) return;
      found.push({
        where,
        directive: d.violatedDirective,
        blocked: d.blockedURL ?? d.contentSecurityPolicyViolationType,
        url: d.sourceCodeLocation?.url,
        line: d.sourceCodeLocation?.lineNumber,
        column: d.sourceCodeLocation?.columnNumber,
      });
    } else if (method === "Target.attachedToTarget") {
      const sessionId = params.sessionId as string;
      const worker = inWorker(channel, sessionId);
      const name = `worker ${(params.targetInfo as { url: string }).url}`;
      workers.set(sessionId, (m) => {
        if (m.method) onEvent(worker, name, m.method, m.params as Record<string, unknown>);
      });
      enable(worker);
    } else if (method === "Target.receivedMessageFromTarget") {
      workers.get(params.sessionId as string)?.(JSON.parse(params.message as string));
    }
  };
  for (const method of ["Audits.issueAdded", "Target.attachedToTarget", "Target.receivedMessageFromTarget"]) {
    cdp.on(method as "Audits.issueAdded", (params) =>
      onEvent(top, `page ${page.url()}`, method, params as never),
    );
  }
  enable(top);
  page.on("console", (message) => {
    if (CSP_MESSAGE.test(message.text())) {
      found.push({
        where: "console",
        directive: "",
        blocked: message.text(),
        url: undefined,
        line: undefined,
        column: undefined,
      });
    }
  });
}

/** The page's own securitypolicyviolation events, as a cross-check (they cannot see workers). */
async function listenForViolationEvents(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: unknown[] = [];
    (window as unknown as { cspEvents: unknown[] }).cspEvents = seen;
    document.addEventListener("securitypolicyviolation", (e) =>
      seen.push({
        where: `event ${location.href}`,
        directive: e.effectiveDirective,
        blocked: e.blockedURI === "eval" ? "kEvalViolation" : e.blockedURI,
        url: e.sourceFile,
        // The event counts lines and columns from 1, DevTools from 0.
        line: e.lineNumber - 1,
        column: e.columnNumber - 1,
      }),
    );
  });
}

async function violationEvents(page: Page): Promise<Violation[]> {
  return page.evaluate(() => (window as unknown as { cspEvents: Violation[] }).cspEvents);
}

/** Presses Tab until the element matching `selector` has focus (a keyboard user's path), at most 40 times. */
async function tabTo(page: Page, selector: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

/**
 * The coordinator's admin page in real Chromium, served by a real coordinator with its security headers:
 * a site trains one round under the Content-Security-Policy (WebAssembly backend in the worker), then the
 * admin signs in with the keyboard, sees the federation, its site and round, and makes an invite.
 */
describe("coordinator admin page", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("shows federations, sites and rounds behind the admin token, makes invites, and keeps to the CSP", async () => {
    // Prepare: a one-site, one-round federation; its site trains on WebAssembly under the coordinator's CSP.
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    // The plan asks the site for its held-out metrics, so the admin page has global metrics to show.
    const plan = {
      ...demo,
      id: "wdbc-admin",
      title: "WDBC admin test",
      rounds: 1,
      minSites: 1,
      evaluation: { ...demo.evaluation, reportMetrics: true },
    };
    const { federation, invites } = await coordinator.storage.createFederation(plan, ["Oslo site"]);
    const token = coordinator.adminToken as string;
    site = await launchSite();
    const violations: Violation[] = [];
    const sitePage = await site.context.newPage();
    await watchCsp(sitePage, violations);
    await listenForViolationEvents(sitePage);
    const siteResponse = sitePage.waitForResponse((r) => r.url().startsWith(`${coordinator.url}/?`));
    const holdout = await enrollAndImport(
      sitePage,
      `${coordinator.url}/?invite=${invites[0]?.code}&backend=wasm`,
      resolve("public/demo/wdbc-site1.csv"),
    );
    const siteHeaders = (await siteResponse).headers();
    const trained = await trainUntilDone(sitePage, holdout, 300_000);

    // Execute: the admin page, keyboard only.
    const adminPage = await site.context.newPage();
    await watchCsp(adminPage, violations);
    await listenForViolationEvents(adminPage);
    const adminResponse = await adminPage.goto(coordinator.adminUrl);
    await adminPage.locator("#admin-token").waitFor();
    // Start from nothing focused, as a keyboard user arriving on the page.
    await adminPage.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await tabTo(adminPage, "#admin-token");
    await adminPage.keyboard.type(token);
    await tabTo(adminPage, "[data-testid=token-form] button[type=submit]");
    const focusOutline = await adminPage.evaluate(
      () => getComputedStyle(document.activeElement as Element).outlineStyle,
    );
    await adminPage.keyboard.press("Enter");
    const federations = adminPage.getByTestId("federations");
    await federations.waitFor();
    // The first federation, the demo one (still training), is shown: make an invite there.
    const demoId = coordinator.invites[0]?.federationId as string;
    await adminPage.getByRole("heading", { name: `Federation: ${demo.title}` }).waitFor();
    const demoMetrics = await adminPage.getByTestId("admin-metrics-none").textContent();
    await tabTo(adminPage, "#invite-label");
    await adminPage.keyboard.type("Bergen site");
    await adminPage.keyboard.press("Enter");
    const code = (await adminPage.getByTestId("invite-code").textContent()) as string;
    const inviteUrl = await adminPage.getByTestId("invite-url").textContent();
    mkdirSync(dirname(SCREENSHOTS.invite), { recursive: true });
    await adminPage.screenshot({ path: SCREENSHOTS.invite, fullPage: true });
    const enrolled = await fetch(`${coordinator.url}${apiPaths.enroll}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inviteCode: code }),
    });
    await adminPage.getByRole("button", { name: "Refresh" }).click();
    const lastInvite = adminPage.locator("[data-testid=invites] tbody tr").last();
    await expect.poll(() => lastInvite.textContent()).toContain("used by Bergen site");
    // Then the federation the site trained.
    await tabTo(adminPage, `[data-federation-id="${federation.id}"] button`);
    await adminPage.keyboard.press("Enter");
    await adminPage.getByRole("heading", { name: "Federation: WDBC admin test" }).waitFor();
    const metricsRows = adminPage.locator("[data-testid=admin-metrics] tbody tr");
    await metricsRows.first().waitFor();
    await adminPage.locator("[data-testid=admin-metrics-chart][data-points]").waitFor();
    await metricsRows.last().locator("summary").click();
    await adminPage.screenshot({ path: SCREENSHOTS.rounds, fullPage: true });
    const storage = await adminPage.evaluate(() => ({
      session: sessionStorage.getItem("fedward-admin-token"),
      local: JSON.stringify({ ...localStorage }),
    }));

    violations.push(...(await violationEvents(sitePage)), ...(await violationEvents(adminPage)));

    // Assert: the site trained its round on WebAssembly under the policy, which both pages were sent.
    expect(trained.backend).toBe("wasm");
    expect(siteHeaders["content-security-policy"]).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(adminResponse?.headers()["content-security-policy"]).toBe(siteHeaders["content-security-policy"]);
    expect(adminResponse?.headers()["x-content-type-options"]).toBe("nosniff");
    // The federations, the federation's site and its aggregated round, as the admin sees them.
    expect(await federations.locator("tbody tr").count()).toBe(2);
    await expect
      .poll(() => adminPage.locator("[data-testid=sites] tbody tr td").first().textContent())
      .toBe("Oslo site");
    const round = adminPage.locator("[data-testid=admin-rounds] tbody tr");
    expect(await round.count()).toBe(1);
    expect(await round.getAttribute("data-status")).toBe("aggregated");
    expect(await round.locator("td").nth(2).textContent()).toMatch(/^Oslo site · .+ · norm \d+\.\d{3}$/);
    // Global metrics: the site reported versions 0 (before round 1) and 1 (the final model); the demo
    // federation's plan does not ask, and its page says why there are none.
    expect(demoMetrics).toMatch(/does not ask the sites for them/);
    expect(
      await metricsRows.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-model-version"))),
    ).toEqual(["0", "1"]);
    const lastMetrics = await metricsRows.last().locator("td").allTextContents();
    expect(lastMetrics[1]).toBe("1");
    expect(Number(lastMetrics[2])).toBeGreaterThan(0);
    expect(lastMetrics[3]).toMatch(/^\d+\.\d%$/);
    expect(lastMetrics[4]).toMatch(/^\d+\.\d{3}$/);
    await expect
      .poll(() => metricsRows.last().locator("li").first().textContent())
      .toMatch(/^Oslo site: accuracy /);
    // The invite enrols a site, and the page then lists it as used (after a refresh).
    expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    expect(inviteUrl).toBe(`${new URL(coordinator.adminUrl).origin}/?invite=${code}`);
    expect(enrolled.status).toBe(200);
    expect(await enrolled.json()).toMatchObject({ federationId: demoId, siteLabel: "Bergen site" });
    // Keyboard focus shows; the token stays in this tab's sessionStorage, out of the URL.
    expect(focusOutline).not.toBe("none");
    expect(adminPage.url()).not.toContain(token);
    expect(storage.session).toBe(token);
    expect(storage.local).not.toContain(token);
    // No violation of the policy anywhere: site page, its workers, admin page (zod runs jitless, src/core/zod.ts).
    expect(violations).toEqual([]);
  });
});
