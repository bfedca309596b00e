import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { storedText, trainUntilDone } from "./site-page";

const DATA = resolve("../shared/data/fhir");
const OMOP = resolve("../shared/data/omop/synthea27nj-cdm54");
const present = existsSync(join(DATA, "synthea-r4-bulk")) && existsSync(join(DATA, "synthea-r4-bundles"));
if (!present)
  console.warn(`fhir-import e2e: ${DATA} is absent, so the FHIR browser import is not tested here.`);

const files = (dir: string) =>
  readdirSync(join(DATA, dir))
    .sort()
    .map((name) => join(DATA, dir, name));

/**
 * Two hospitals with the same 199 Synthea patients in two FHIR shapes: one imports the Bulk Data export
 * (NDJSON, gzipped), the other the 200 transaction Bundles, through the real file input in Chromium; both
 * derive the same 165 patients (the same held-out ones too), and the federation completes a round. The
 * same plan then reads the OMOP CDM sample's tables in a third site.
 */
describe.runIf(present)("FHIR import end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  const sites: Site[] = [];

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await Promise.all(sites.map((s) => s.close()));
    await coordinator?.dispose();
  });

  it("imports a bulk export in one site and bundles in another, and trains a round", async () => {
    // Prepare
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/synthea-hypertension-plan.json", "utf8")));
    const { invites } = await coordinator.storage.createFederation({ ...demo, rounds: 1 }, [
      "Bulk",
      "Bundles",
    ]);
    for (let i = 0; i < 2; i++) sites.push(await launchSite());
    const pages = await Promise.all(sites.map((s) => s.context.newPage()));
    for (const page of pages) page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));

    // Execute: import
    const exports = [files("synthea-r4-bulk"), files("synthea-r4-bundles")];
    const summaries = await Promise.all(
      pages.map(async (page, i) => {
        await page.goto(`${coordinator.url}/?invite=${invites[i]?.code}&backend=wasm`);
        await page.getByTestId("plan-hash").waitFor();
        await page.getByTestId("file-input").setInputFiles(exports[i] as string[]);
        const summary = page.getByTestId("import-summary");
        await summary.waitFor({ timeout: 300_000 });
        return {
          examples: await summary.getAttribute("data-examples"),
          holdout: Number(await summary.getAttribute("data-holdout")),
          text: await summary.innerText(),
          stored: await storedText(page),
        };
      }),
    );

    // Assert: the same patients from both shapes; no names, ids or file names (they hold names) stored
    for (const s of summaries) {
      expect(s.examples).toBe("165");
      expect(s.text).toContain("from 199 patients; 34 patients left out");
      expect(s.stored).not.toMatch(/Patient\/|urn:uuid|\d{4}-\d{2}-\d{2}T\d{2}/);
      // Synthea names its bundle files after the patient: no file name is kept, only "file i of n".
      for (const name of readdirSync(join(DATA, "synthea-r4-bundles")).slice(0, 20)) {
        expect(s.stored).not.toContain(name.split("_")[0]);
      }
    }
    expect(summaries[0]?.holdout).toBe(summaries[1]?.holdout);
    const patients = gunzipSync(readFileSync(join(DATA, "synthea-r4-bulk", "Patient.000.ndjson.gz")))
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { id: string; name: { family: string }[] });
    for (const s of summaries) {
      for (const p of patients.slice(0, 20)) {
        expect(s.stored).not.toContain(p.id);
        expect(s.stored).not.toContain(p.name[0]?.family);
      }
    }

    // Execute: train one round
    const results = await Promise.all(
      pages.map((p, i) => trainUntilDone(p, summaries[i]?.holdout ?? 0, 300_000)),
    );

    // Assert
    for (const r of results) {
      expect(r.backend).toBe("wasm");
      expect(r.accuracyAfter).toBeGreaterThan(0);
    }
    const federationId = invites[0]?.federationId as string;
    expect(await coordinator.storage.getModelVersions(federationId)).toEqual([0, 1]);
  });

  it.runIf(existsSync(OMOP))("imports OMOP CDM tables (gzipped CSV) with the same plan", async () => {
    // Prepare: the 28 Synthea persons of the OMOP sample; tables the cohort does not read are reported
    const demo = parsePlan(JSON.parse(readFileSync("public/demo/synthea-hypertension-plan.json", "utf8")));
    const { invites } = await coordinator.storage.createFederation({ ...demo, id: "omop-e2e", minSites: 1 }, [
      "OMOP",
    ]);
    const site = await launchSite();
    sites.push(site);
    const page = await site.context.newPage();
    await page.goto(`${coordinator.url}/?invite=${invites[0]?.code}`);
    await page.getByTestId("plan-hash").waitFor();
    const tables = readdirSync(OMOP)
      .sort()
      .map((name) => join(OMOP, name));

    // Execute
    await page.getByTestId("file-input").setInputFiles(tables);
    const summary = page.getByTestId("import-summary");
    await summary.waitFor({ timeout: 120_000 });

    // Assert: as the dry run and the in-memory engine give (24 examples; 2 born after, 2 dead before 2016)
    expect(await summary.getAttribute("data-examples")).toBe("24");
    expect(await summary.innerText()).toContain("from 28 patients; 4 patients left out");
    expect(await page.getByTestId("manifest").getAttribute("data-files")).toBe(String(tables.length));
    // Per file: what was read from it (the 28 PERSON rows are one of the tables)
    const perFile = await page
      .locator("[data-testid=manifest] li")
      .evaluateAll((lis) => lis.map((li) => Number((li as HTMLElement).dataset.records)));
    expect(perFile).toContain(28);
    // Each file's SHA-256, hashed in the import worker's own hashing worker while it parsed, in file order
    const hashes = await page
      .locator("[data-testid=manifest] li")
      .evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.sha256));
    expect(hashes).toEqual(tables.map((t) => createHash("sha256").update(readFileSync(t)).digest("hex")));
  });
});
