import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { loadConfig } from "../../src/server/config";
import { startCoordinator } from "../../src/server/server";
import { launchSite, type Site } from "./browser";
import { ensureBuiltApp, freshCoordinator } from "./coordinator";
import { downloadFinalModel, enrollAndImport, ledgerOnPage, trainUntilDone } from "./site-page";

/**
 * The site's whole path (invite, plan, CSV import, one training round, model download) under route
 * interception that aborts and records any request to another origin than the app's and the
 * coordinator's (one origin here, as the coordinator serves the app). Then the coordinator stops and the
 * browser goes offline, and the service worker's copy of the app opens the site's enrolment, data and
 * ledger from IndexedDB, saying in plain words that the coordinator cannot be reached.
 */
describe("offline and no third-party request", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
  });

  it("requests only its own origin on the whole path, then reopens from the service worker offline", async () => {
    // Prepare: a one-site, one-round federation; every request of the browser context is watched.
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    const plan = { ...demo, id: "wdbc-offline", title: "WDBC offline test", rounds: 1, minSites: 1 };
    const { invites } = await coordinator.storage.createFederation(plan, ["Oslo site"]);
    const origin = new URL(coordinator.url).origin;
    site = await launchSite();
    const context = site.context;
    const routed: string[] = [];
    const requested: string[] = [];
    const elsewhere: string[] = [];
    await context.route("**/*", (route) => {
      const url = route.request().url();
      routed.push(url);
      if (new URL(url).origin === origin) return route.continue();
      elsewhere.push(url);
      return route.abort("blockedbyclient");
    });
    // Requests the routes do not see (answered by the service worker, or from workers) still show here.
    context.on("request", (request) => requested.push(request.url()));
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const inviteUrl = `${origin}/?invite=${encodeURIComponent(invites[0]?.code as string)}&backend=wasm`;

    // Execute: the path, online.
    const holdout = await enrollAndImport(page, inviteUrl, resolve("public/demo/wdbc-site1.csv"));
    await trainUntilDone(page, holdout, 300_000);
    await downloadFinalModel(page);
    const online = await ledgerOnPage(page);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, {
      timeout: 60_000,
    });
    const worker = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.ready;
      const cached: string[] = [];
      const names = await caches.keys();
      for (const name of names) {
        for (const request of await (await caches.open(name)).keys()) cached.push(request.url);
      }
      return { scope: registration.scope, script: registration.active?.scriptURL, names, cached };
    });
    const swResponse = await fetch(`${origin}/sw.js`);
    const swStatus = swResponse.status;
    const swHeaders = Object.fromEntries(swResponse.headers);
    await swResponse.arrayBuffer();

    // A control: a navigation to another origin (the one kind of request the policy does not stop) is caught.
    const onPath = [...elsewhere];
    const probe = await context.newPage();
    await probe.goto("http://third-party.example/").catch(() => undefined);
    await probe.close();

    // Execute: the coordinator (and with it the app's server) stops, the browser goes offline, reload.
    await coordinator.close();
    await context.setOffline(true);
    const reloaded = await page.reload();
    const offlineNotice = page.getByTestId("offline");
    await offlineNotice.waitFor({ timeout: 30_000 });
    await page.getByTestId("import-summary").waitFor();
    const offline = await ledgerOnPage(page);
    mkdirSync(resolve("test-results"), { recursive: true });
    await page.screenshot({ path: resolve("test-results/offline-site.png"), fullPage: true });

    // Assert: not one request left for another origin, and the watch saw the real traffic.
    expect(onPath).toEqual([]);
    expect(elsewhere).toEqual(["http://third-party.example/"]);
    const all = [...routed, ...requested].filter((u) => !elsewhere.includes(u));
    const network = all.filter((u) => u.startsWith("http:") || u.startsWith("https:"));
    expect(new Set(network.map((u) => new URL(u).origin))).toEqual(new Set([origin]));
    expect(all.filter((u) => !network.includes(u)).every((u) => /^(blob|data):/.test(u))).toBe(true);
    expect(network.some((u) => u.includes("/api/sites/") || u.includes("/api/enroll"))).toBe(true);
    expect(network.some((u) => /\/assets\/tfjs-backend-wasm.*\.wasm$/.test(u))).toBe(true);
    // The service worker: at the root, served with the policy, its one cache holding only the app's files.
    expect(worker.scope).toBe(`${origin}/`);
    expect(worker.script).toBe(`${origin}/sw.js`);
    expect(swStatus).toBe(200);
    expect(swHeaders["content-type"]).toMatch(/javascript/);
    expect(swHeaders["content-security-policy"]).toContain("worker-src 'self'");
    expect(worker.names).toHaveLength(1);
    expect(worker.names[0]).toMatch(/^fedward-shell-[0-9a-f]{16}$/);
    expect(worker.cached).toContain(`${origin}/index.html`);
    expect(worker.cached.some((u) => /\/assets\/train\.worker-.+\.js$/.test(u))).toBe(true);
    expect(worker.cached.every((u) => u.startsWith(`${origin}/`) && !u.includes("/api/"))).toBe(true);
    // Offline: the page came from the service worker, with the site's enrolment, data and ledger.
    expect(reloaded?.fromServiceWorker()).toBe(true);
    expect(await offlineNotice.textContent()).toContain("Offline: the coordinator at");
    expect(await offlineNotice.textContent()).toContain("cannot be reached");
    expect(await page.getByText("This computer is enrolled as Oslo site").count()).toBe(1);
    expect(offline.rows).toEqual(online.rows);
    expect(offline.rows.map((r) => r.outcome)).toEqual(["accepted"]);
    expect(pageErrors).toEqual([]);
  });

  it("offers a new build's version with a reload, then keeps only the new build's cache", async () => {
    // Prepare: a coordinator serving a copy of the build, so the test can "deploy" a new one over it.
    const appDir = mkdtempSync(join(tmpdir(), "fedward-app-"));
    const dataDir = mkdtempSync(join(tmpdir(), "fedward-coord-"));
    cpSync(await ensureBuiltApp(), appDir, { recursive: true });
    const served = await startCoordinator(
      { ...loadConfig({}), port: 0, host: "127.0.0.1", dataDir, appDir, logLevel: "silent" },
      { print: () => {} },
    );
    const browser = await launchSite();
    const cacheNames = () => page.evaluate(() => caches.keys());
    const page = await browser.context.newPage();
    try {
      await page.goto(`${served.url}/`);
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, {
        timeout: 60_000,
      });
      const first = await cacheNames();

      // Execute: a new build (here: the same files under another version) is deployed; the browser checks.
      const swPath = join(appDir, "sw.js");
      const old = readFileSync(swPath, "utf8");
      const next = old.replace(/(\\"version\\":\\")[0-9a-f]{16}/, "$10123456789abcdef");
      writeFileSync(swPath, next);
      await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
      const banner = page.getByTestId("update");
      await banner.waitFor({ timeout: 60_000 });
      await page.screenshot({ path: resolve("test-results/offline-update.png"), fullPage: true });
      const stillOld = await cacheNames();
      const offered = await banner.textContent();
      await Promise.all([
        page.waitForEvent("load"),
        banner.getByRole("button", { name: "Reload now" }).click(),
      ]);

      // Assert: the old build served until the clinician chose; then only the new build's cache is left.
      expect(next).not.toBe(old);
      expect(first).toHaveLength(1);
      expect(first[0]).toMatch(/^fedward-shell-[0-9a-f]{16}$/);
      expect(first[0]).not.toBe("fedward-shell-0123456789abcdef");
      expect(stillOld).toContain(first[0]);
      expect(offered).toContain("A new version of fedward is available.");
      await expect.poll(cacheNames, { timeout: 30_000 }).toEqual(["fedward-shell-0123456789abcdef"]);
      expect(await page.getByTestId("update").count()).toBe(0);
    } finally {
      await browser.close();
      await served.close();
      rmSync(appDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
