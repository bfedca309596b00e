import type { Page } from "playwright-core";

/** Clicks "I approve this plan" unless this site approved the plan already (nothing trains before). */
export async function approvePlan(page: Page): Promise<void> {
  const approval = page.getByTestId("plan-approval");
  await approval.waitFor({ state: "attached" });
  if ((await approval.getAttribute("data-approved")) === "true") return;
  await page.getByTestId("approve-plan").click();
  await page.locator("[data-testid=plan-approval][data-approved=true]").waitFor({ state: "attached" });
}

/** What the clinician does: open the invite, import the CSV through the real file input, join training. */
export async function enrollAndImport(page: Page, inviteUrl: string, csvPath: string): Promise<number> {
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  await page.goto(inviteUrl);
  await page.getByTestId("plan-hash").waitFor();
  await approvePlan(page);
  await page.getByTestId("file-input").setInputFiles(csvPath);
  const summary = page.getByTestId("import-summary");
  await summary.waitFor({ timeout: 60_000 });
  return Number(await summary.getAttribute("data-holdout"));
}

export interface SiteResult {
  backend: string;
  reason: string;
  fallbackAdapter: boolean;
  accuracyBefore: number;
  accuracyAfter: number;
  /** Held-out loss of the first global model and of the final one. */
  lossBefore: number;
  lossAfter: number;
  holdout: number;
}

/** Clicks "Join training" and waits until the page says the federation is done (or shows an error). */
export async function trainUntilDone(page: Page, holdout: number, timeoutMs: number): Promise<SiteResult> {
  await approvePlan(page);
  await page.getByTestId("join").click();
  const status = page.getByTestId("status");
  await page.waitForFunction(
    () => {
      const s = document.querySelector("[data-testid=status]")?.getAttribute("data-state");
      return s === "done" || s === "error" || s === "stopped";
    },
    undefined,
    { timeout: timeoutMs, polling: 250 },
  );
  const state = await status.getAttribute("data-state");
  if (state === "stopped") throw new Error(`The site stopped taking part: ${await status.textContent()}`);
  if (state === "error") {
    const error = await page.locator(".error").allTextContents();
    throw new Error(`The site stopped with an error: ${error.join(" ")}`);
  }
  const backend = page.getByTestId("backend");
  const rounds = page.locator("[data-testid=rounds] tbody tr");
  const first = rounds.first();
  const last = rounds.last();
  return {
    backend: (await backend.getAttribute("data-backend")) ?? "",
    reason: (await backend.getAttribute("data-reason")) ?? "",
    fallbackAdapter: (await backend.getAttribute("data-fallback-adapter")) === "true",
    accuracyBefore: Number(await first.getAttribute("data-accuracy-before")),
    accuracyAfter: Number(await last.getAttribute("data-accuracy-after")),
    lossBefore: Number(await first.getAttribute("data-loss-before")),
    lossAfter: Number(await last.getAttribute("data-loss-after")),
    holdout,
  };
}

/** Accuracy over the union of the sites' held-out splits. */
export function pooled(results: SiteResult[], key: "accuracyBefore" | "accuracyAfter"): number {
  const n = results.reduce((s, r) => s + r.holdout, 0);
  return results.reduce((s, r) => s + r[key] * r.holdout, 0) / n;
}

/** Clicks the download button; returns the saved paths of model.json and weights.bin. */
export async function downloadFinalModel(page: Page): Promise<[string, string]> {
  const saved: Record<string, string> = {};
  const both = new Promise<void>((done) => {
    page.on("download", async (d) => {
      saved[d.suggestedFilename()] = await d.path();
      if (saved["model.json"] && saved["weights.bin"]) done();
    });
  });
  await page.getByTestId("download").click();
  await both;
  return [saved["model.json"] as string, saved["weights.bin"] as string];
}

export interface LedgerOnPage {
  spent: number;
  rows: { round: number; epsilonAfter: number; sha256: string; outcome: string }[];
  /** The SHA-256 of each upload as the rounds table shows it (rounds with an upload). */
  uploadShas: string[];
  /** What the page's IndexedDB ledger holds, read with the raw IndexedDB API. */
  stored: { round: number; sha256: string }[];
}

/** The privacy section as the clinician sees it, and the ledger rows in the browser's IndexedDB. */
export async function ledgerOnPage(page: Page): Promise<LedgerOnPage> {
  const spent = Number(await page.getByTestId("privacy-spent").getAttribute("data-spent"));
  const rows = await page.locator("[data-testid=ledger] tbody tr").evaluateAll((trs) =>
    trs.map((tr) => {
      const el = tr as HTMLElement;
      return {
        round: Number(el.dataset.round),
        epsilonAfter: Number(el.dataset.epsilonAfter),
        sha256: el.dataset.sha256 ?? "",
        outcome: el.lastElementChild?.textContent ?? "",
      };
    }),
  );
  const uploadShas = await page
    .locator("[data-testid=rounds] tbody td.hash")
    .evaluateAll((tds) => tds.map((td) => td.getAttribute("title") ?? "").filter((t) => t !== ""));
  const stored = await page.evaluate(
    () =>
      new Promise<{ round: number; sha256: string }[]>((done, fail) => {
        const open = indexedDB.open("fedward");
        open.onerror = () => fail(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction("releases").objectStore("releases").getAll();
          all.onerror = () => fail(all.error);
          all.onsuccess = () => {
            done(
              (all.result as { round: number; sha256: string }[]).map((r) => ({
                round: r.round,
                sha256: r.sha256,
              })),
            );
            open.result.close();
          };
        };
      }),
  );
  return { spent, rows, uploadShas, stored };
}

/**
 * Every record of the page's IndexedDB database as JSON text, read with the raw IndexedDB API, to check
 * that no identifier was stored. `skip` leaves stores out (the shards' typed arrays are large and numeric).
 */
export async function storedText(page: Page, skip: string[] = []): Promise<string> {
  return page.evaluate(
    (leaveOut) =>
      new Promise<string>((done) => {
        const open = indexedDB.open("fedward");
        open.onsuccess = () => {
          const db = open.result;
          const names = Array.from(db.objectStoreNames).filter((n) => !leaveOut.includes(n));
          const tx = db.transaction(names);
          Promise.all(
            names.map(
              (n) =>
                new Promise<string>((res) => {
                  const req = tx.objectStore(n).getAll();
                  req.onsuccess = () => res(JSON.stringify(req.result));
                }),
            ),
          ).then((parts) => done(parts.join("\n")));
        };
      }),
    skip,
  );
}
