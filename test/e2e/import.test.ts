import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";

/** Every string of every IndexedDB store of the page, serialised, to look for identifiers. */
const dumpIndexedDb = () =>
  new Promise<string>((resolve, reject) => {
    const open = indexedDB.open("fedward");
    open.onerror = () => reject(open.error);
    open.onsuccess = async () => {
      const db = open.result;
      const parts: string[] = [];
      for (const name of Array.from(db.objectStoreNames)) {
        const rows = await new Promise<unknown[]>((res) => {
          const req = db.transaction(name).objectStore(name).getAll();
          req.onsuccess = () => res(req.result);
        });
        parts.push(JSON.stringify(rows));
      }
      resolve(parts.join("\n"));
    };
  });

/**
 * The import screen in real Chromium: problems with line numbers, identifiers that never reach IndexedDB,
 * a bad file that leaves the earlier import intact, a reload that keeps the site enrolled, and an import
 * that sends nothing over the network.
 */
describe("importing a hospital's CSV in the browser", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  let site: Site | undefined;
  const dir = mkdtempSync(join(tmpdir(), "fedward-csv-"));

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await site?.close();
    await coordinator?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows problems by line, stores no identifiers, survives a bad file and a reload", async () => {
    // Prepare: the demo file with identifier columns and four broken rows (file lines 3, 5, 8 and 10)
    const [header, ...rows] = readFileSync("public/demo/wdbc-site1.csv", "utf8").trim().split("\n");
    const cells = rows.slice(0, 30).map((r) => r.split(","));
    (cells[1] as string[])[2] = "";
    (cells[3] as string[])[5] = "n/a";
    (cells[6] as string[])[30] = "unsure";
    // Line 10 forgets the quotes around the name, so every cell slips one column to the right.
    const lines = cells.map(
      (c, i) => `${i === 8 ? "Doe, Jane" : '"Doe, Jane'}${i}${i === 8 ? "" : '"'},MRN-77${i},${c.join(",")}`,
    );
    const messy = join(dir, "messy.csv");
    writeFileSync(messy, `name,mrn,${header}\r\n${lines.join("\r\n")}\r\n`);
    const noLabel = join(dir, "no-label.csv");
    writeFileSync(noLabel, `${header?.replace(",diagnosis", "")}\n1,2,3\n`);
    site = await launchSite();
    const page = await site.context.newPage();
    const posts: string[] = [];
    page.on("request", (r) => {
      if (r.method() !== "GET") posts.push(`${r.method()} ${r.url()}`);
    });

    // Execute and assert: the messy file
    await page.goto(coordinator.invites[0]?.url as string);
    await page.getByTestId("plan-hash").waitFor();
    expect(page.url()).not.toContain("invite=");
    await page.getByTestId("file-input").setInputFiles(messy);
    const summary = page.getByTestId("import-summary");
    await summary.waitFor();
    expect(await summary.getAttribute("data-examples")).toBe("26");
    const problems = await page.locator("[data-testid=problems] tbody tr").allInnerTexts();
    expect(problems.map((p) => p.split("\t").slice(0, 2).join(" "))).toEqual([
      "3 mean perimeter",
      "5 mean compactness",
      "8 diagnosis",
      "10 mean radius",
      "10 diagnosis",
    ]);
    expect((await page.getByTestId("problems").innerText()).includes("MRN")).toBe(false);
    const stored = await page.evaluate(dumpIndexedDb);
    expect(stored).not.toMatch(/Jane|MRN-77|Doe/);
    // The manifest names the file by size and SHA-256 (hashed in the worker, streaming); the file's name is
    // the only string of it that is kept. Storage: persistence was asked for and the quota is shown.
    const manifest = page.getByTestId("manifest");
    expect(await manifest.getAttribute("data-sha256")).toBe(
      createHash("sha256").update(readFileSync(messy)).digest("hex"),
    );
    expect(Number(await manifest.getAttribute("data-size"))).toBe(statSync(messy).size);
    expect(await page.getByTestId("storage").innerText()).toMatch(
      /Storage on this computer: .* used of .* allows/,
    );

    // The same rows as a semicolon, decimal-comma file with a BOM (a European spreadsheet) import the same
    const european = join(dir, "european.csv");
    writeFileSync(
      european,
      `\uFEFF${readFileSync("public/demo/wdbc-site1.csv", "utf8")
        .trim()
        .split("\n")
        .map((line) =>
          line
            .split(",")
            .map((cell) => cell.replace(".", ","))
            .join(";"),
        )
        .join("\r\n")}\r\n`,
    );
    await page.getByTestId("file-input").setInputFiles(european);
    await page.locator(`[data-testid=manifest][data-size='${statSync(european).size}']`).waitFor();
    expect(await summary.getAttribute("data-examples")).toBe("190");
    await page.getByTestId("file-input").setInputFiles(messy);
    await page.locator(`[data-testid=manifest][data-size='${statSync(messy).size}']`).waitFor();

    // A large import cancelled half-way leaves the earlier dataset as it was
    const big = join(dir, "big.csv");
    const body = readFileSync("public/demo/wdbc-site1.csv", "utf8").trim().split("\n").slice(1);
    writeFileSync(big, `${header}\n${Array.from({ length: 600 }, () => body.join("\n")).join("\n")}\n`);
    await page.getByTestId("file-input").setInputFiles(big);
    await page.waitForFunction(() =>
      /Reading big\.csv: [1-9]/.test(
        document.querySelector("[data-testid=import-progress]")?.textContent ?? "",
      ),
    );
    await page.getByTestId("cancel-import").click();
    expect(await page.getByTestId("import-cancelled").innerText()).toBe(
      "The import of big.csv was cancelled.",
    );
    expect(await summary.getAttribute("data-examples")).toBe("26");

    // A file without the label column: refused by name, the earlier import stays
    await page.getByTestId("file-input").setInputFiles(noLabel);
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.innerText()).toContain("diagnosis");
    expect(await alert.innerText()).toContain("no-label.csv");

    // A reload keeps the enrollment and the earlier dataset
    await page.reload();
    await page.getByTestId("plan-hash").waitFor();
    await summary.waitFor();
    expect(await summary.getAttribute("data-examples")).toBe("26");
    expect(posts).toEqual([`POST ${coordinator.url.replace("127.0.0.1", "localhost")}/api/enroll`]);
  });
});
