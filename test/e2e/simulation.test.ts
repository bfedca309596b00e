import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchSite, type Site } from "./browser";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".csv": "text/csv",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** A plain static file server, as any static host would be: no coordinator, no API, no rewrites. */
function serveStatic(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(dir, path === "/" ? "index.html" : path));
    if (!file.startsWith(dir)) return void res.writeHead(403).end();
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(server)));
}

interface TableRow {
  round: number;
  federated: number;
  pooled: number;
  alone: number[];
  epsilon: number;
}

/**
 * The workshop demo in real Chromium, from the production build on a plain static server: three simulated
 * hospitals (IID), each with its own training worker (WASM backend), federated by the page.
 */
describe("simulated federation in one tab", () => {
  let outDir: string;
  let server: Server;
  let site: Site | undefined;

  beforeAll(async () => {
    // Built into a directory of its own, so the shared dist/ of other tests is left alone.
    outDir = mkdtempSync(join(tmpdir(), "fedward-sim-dist-"));
    await build({ logLevel: "warn", build: { outDir, emptyOutDir: true } });
    server = await serveStatic(resolve(outDir));
  });
  afterAll(async () => {
    await site?.close();
    await new Promise((done) => server?.close(done));
    rmSync(outDir, { recursive: true, force: true });
  });

  it("3 IID hospitals reach ≥ 0.9 held-out accuracy at ε ≤ 3 per row, each alone shown; a non-IID restart skews labels; only the own origin is asked", async () => {
    // Prepare
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    site = await launchSite();
    const requested: string[] = [];
    site.context.on("request", (r) => requested.push(r.url()));
    const page = await site.context.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await page.goto(`${origin}/?backend=wasm`);

    // Execute: from the start page, open the simulation and run it with its defaults (3 sites, IID)
    await page.getByRole("button", { name: "Try a simulated federation" }).click();
    await page.getByLabel("Simulated hospitals").fill("3");
    await page.getByLabel("How the data is split").selectOption("iid");
    await page.getByRole("button", { name: "Start the simulation" }).click();
    await page.waitForFunction(
      () => {
        const s = document.querySelector("[data-testid=sim-status]")?.getAttribute("data-state");
        return s === "done" || s === "error" || s === "stopped";
      },
      undefined,
      { timeout: 400_000, polling: 500 },
    );

    // Assert
    const status = page.getByTestId("sim-status");
    const state = await status.getAttribute("data-state");
    if (state !== "done") {
      const errors = await page.locator(".error").allTextContents();
      throw new Error(`The simulation ended ${state}: ${await status.textContent()} ${errors.join(" ")}`);
    }
    const rows: TableRow[] = await page.$$eval("[data-testid=sim-table] tbody tr", (trs) =>
      trs.map((tr) => {
        const d = (tr as HTMLElement).dataset;
        return {
          round: Number(d.round),
          federated: Number(d.federated),
          pooled: Number(d.pooled),
          alone: (d.alone ?? "").split(",").map(Number),
          epsilon: Number(d.epsilon),
        };
      }),
    );
    for (const r of rows) {
      console.log(
        `e2e simulation: round ${r.round} federated=${r.federated.toFixed(3)} pooled=${r.pooled.toFixed(3)} ` +
          `alone=${r.alone.map((a) => a.toFixed(3)).join("/")} epsilon=${r.epsilon}`,
      );
    }
    console.log(
      `e2e simulation: backend=${await status.getAttribute("data-backend")}; ${await status.textContent()}`,
    );
    expect(await status.getAttribute("data-backend")).toBe("wasm");
    expect(rows.map((r) => r.round)).toEqual([0, 1, 2, 3]); // the demo plan's 3 rounds, after the start
    const last = rows.at(-1) as TableRow;
    expect(last.federated).toBeGreaterThanOrEqual(0.9);
    expect(last.alone).toHaveLength(3);
    for (const a of last.alone) expect(a).toBeGreaterThan(0);
    // The demo plan's DP-SGD at ε ≤ 3 per row over its whole plan (δ = 1e-5), each hospital alike.
    expect(last.epsilon).toBeGreaterThan(0);
    expect(last.epsilon).toBeLessThanOrEqual(3);
    expect(await page.locator("[data-testid=sim-table] thead th").allTextContents()).toEqual(
      expect.arrayContaining(["Hospital 1 alone (same ε)"]),
    );
    // ε grows with every release, from 0 before the first.
    expect(rows[0]?.epsilon).toBe(0);
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]?.epsilon).toBeGreaterThan(rows[i - 1]?.epsilon as number);
    }
    // Both charts were drawn (uPlot canvases), and the table alternative is there.
    await expect.poll(() => page.locator("[data-testid=accuracy-chart] canvas").count()).toBe(1);
    await expect.poll(() => page.locator("[data-testid=epsilon-chart] canvas").count()).toBe(1);
    expect(await page.getByTestId("sim-table").isVisible()).toBe(true);
    expect(await page.getByTestId("sim-notice").textContent()).toMatch(/simulation on a public dataset/);

    // No coordinator and no third party: every request went to the app's own origin.
    const foreign = requested.filter((u) => !u.startsWith(`${origin}/`) && !/^(data|blob):/.test(u));
    expect(requested.some((u) => u.endsWith("/demo/wdbc-site1.csv"))).toBe(true);
    expect(foreign).toEqual([]);

    // Restart, non-IID: 4 hospitals with strong label skew (Dirichlet alpha = 0.1), one round.
    const iidSkew = Number(await page.getByTestId("sim-split").getAttribute("data-skew"));
    await page.getByLabel("Simulated hospitals").fill("4");
    await page.getByLabel("How the data is split").selectOption("dirichlet");
    await page.getByLabel("Dirichlet α").fill("0.1");
    await page.getByLabel("Rounds").fill("1");
    await page.getByRole("button", { name: "Start the simulation" }).press("Enter");
    await page.waitForFunction(
      () => document.querySelector("[data-testid=sim-status]")?.getAttribute("data-state") !== "running",
      undefined,
      { timeout: 300_000, polling: 500 },
    );
    expect(await status.getAttribute("data-state")).toBe("done");
    const skewed = Number(await page.getByTestId("sim-split").getAttribute("data-skew"));
    const skewedRows = await page.$$eval("[data-testid=sim-table] tbody tr", (trs) =>
      trs.map((tr) => (tr as HTMLElement).dataset.alone?.split(",").map(Number) ?? []),
    );
    console.log(`e2e simulation: label skew IID=${iidSkew.toFixed(3)} Dirichlet(0.1)=${skewed.toFixed(3)}`);
    console.log(`e2e simulation: non-IID round 1 alone=${skewedRows[1]?.map((a) => a.toFixed(3)).join("/")}`);
    expect(skewed).toBeGreaterThan(iidSkew + 0.1);
    expect(skewedRows).toHaveLength(2);
    expect(skewedRows[1]).toHaveLength(4);

    // The simulation's datasets were deleted from IndexedDB when it ended.
    const left = await page.evaluate(
      () =>
        new Promise<number>((done, fail) => {
          const open = indexedDB.open("fedward");
          open.onerror = () => fail(open.error);
          open.onsuccess = () => {
            const all = open.result.transaction("datasets").objectStore("datasets").getAll();
            all.onsuccess = () => {
              const rows = all.result as { federationId: string }[];
              done(rows.filter((r) => r.federationId.startsWith("simulation:")).length);
              open.result.close();
            };
          };
        }),
    );
    expect(left).toBe(0);

    // axe-core finds no violations on the finished simulation page (injected from node_modules).
    await page.addScriptTag({ path: resolve("node_modules/axe-core/axe.min.js") });
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(): Promise<{ violations: { id: string }[] }> } }).axe;
      return (await axe.run()).violations.map((v) => v.id);
    });
    expect(violations).toEqual([]);

    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/simulation.png", fullPage: true });
  });
});
