import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Plan, parsePlan } from "../../src/core/plan";
import { readDicom } from "../../workers/import/dicom/read";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { storedText, trainUntilDone } from "./site-page";

const PYDICOM = resolve("../shared/data/dicom/pydicom");
const present = existsSync(PYDICOM);
if (!present)
  console.warn(`image-import e2e: ${PYDICOM} is absent, so the DICOM browser import is not tested here.`);

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
}

/**
 * Two imaging sites in Debian's Chromium, each through the real folder picker: one imports pydicom's whole
 * test folder (every transfer syntax, a DICOMDIR tree of extensionless files, SR/RT/waveform objects and
 * broken files) with a labels CSV keyed by SOPInstanceUID into a CT-vs-MR federation; the other imports the
 * digits demo's PNG folder (labels from folder names). Both train a CNN round on wasm (the Conv2D filter
 * gradient fedward registers for tfjs-wasm) and the coordinator aggregates it.
 */
describe.runIf(present)("image import end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  const sites: Site[] = [];
  let folder: string;
  let expected: {
    examples: number;
    ct: number;
    mr: number;
    files: number;
    uids: string[];
    patients: string[];
  };

  beforeAll(async () => {
    coordinator = await freshCoordinator();
    // The DICOM site's folder: pydicom's files as they are, plus labels.csv from each image's Modality, read
    // here by the same reader the worker runs (Node), so the expected counts are not typed in by hand.
    folder = mkdtempSync(join(tmpdir(), "fedward-dicom-site-"));
    cpSync(PYDICOM, join(folder, "pydicom"), { recursive: true });
    const rows = ["SOPInstanceUID,modality"];
    const uids = new Set<string>();
    const patients = new Set<string>();
    let ct = 0;
    let mr = 0;
    const files = walk(join(folder, "pydicom"));
    for (const path of files) {
      try {
        const read = await readDicom(new Uint8Array(readFileSync(path)), {
          fileName: relative(folder, path),
          labelKeys: ["SOPInstanceUID", "PatientID"],
        });
        if (read.kind !== "image" || (read.modality !== "CT" && read.modality !== "MR")) continue;
        const uid = read.labelKeys.SOPInstanceUID as string;
        if (read.labelKeys.PatientID) patients.add(read.labelKeys.PatientID);
        if (!uids.has(uid)) rows.push(`${uid},${read.modality}`);
        uids.add(uid);
        if (read.modality === "CT") ct++;
        else mr++;
      } catch {
        // a broken file: the browser import reports it
      }
    }
    writeFileSync(join(folder, "pydicom", "labels.csv"), `${rows.join("\n")}\n`);
    expected = { examples: ct + mr, ct, mr, files: files.length, uids: [...uids], patients: [...patients] };
  });
  afterAll(async () => {
    await Promise.all(sites.map((s) => s.close()));
    await coordinator?.dispose();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it("imports a DICOM folder and a PNG folder into two sites, each of which trains a CNN round", async () => {
    // Prepare: two federations (a plan reads either DICOM or PNG/JPEG), one round each, one site each
    const digits = parsePlan(JSON.parse(readFileSync("public/demo/digits-plan.json", "utf8")));
    const modality: Plan = parsePlan({
      ...digits,
      id: "dicom-modality-e2e",
      title: "CT or MR (a test of the DICOM pipeline)",
      image: {
        width: 16,
        height: 16,
        channels: 1,
        source: "dicom",
        labels: { key: "SOPInstanceUID", labelColumn: "modality" },
      },
      label: { positive: "CT", negative: "MR" },
      model: { type: "cnn", conv: [{ filters: 4, kernel: 3, pool: 2 }], dense: [8], activation: "relu" },
      privacy: { ...digits.privacy, stepsPerRound: 5 },
      evaluation: { holdoutFraction: 0.3 },
    });
    const plans = [modality, { ...digits, id: "digits-e2e" }].map((p) => ({ ...p, rounds: 1, minSites: 1 }));
    const invites = [];
    for (const plan of plans)
      invites.push((await coordinator.storage.createFederation(plan, ["Site"])).invites[0]);
    for (let i = 0; i < 2; i++) sites.push(await launchSite());
    const pages = await Promise.all(sites.map((s) => s.context.newPage()));
    const errors: string[] = [];
    for (const page of pages) page.on("pageerror", (e) => errors.push(e.message));
    const folders = [join(folder, "pydicom"), resolve("public/demo/digits/site1")];

    // Execute: import each folder through the folder picker
    const summaries = [];
    for (const [i, page] of pages.entries()) {
      await page.goto(`${coordinator.url}/?invite=${invites[i]?.code}&backend=wasm`);
      await page.getByTestId("plan-hash").waitFor();
      await page.getByTestId("folder-input").setInputFiles(folders[i] as string);
      const summary = page.getByTestId("import-summary");
      await summary.waitFor({ timeout: 300_000 });
      const problems = await page
        .locator("[data-testid=problems] tbody tr")
        .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).innerText));
      await page.screenshot({
        path: `test-results/image-import-${i === 0 ? "dicom" : "png"}.png`,
        fullPage: true,
      });
      summaries.push({
        examples: Number(await summary.getAttribute("data-examples")),
        holdout: Number(await summary.getAttribute("data-holdout")),
        text: await summary.innerText(),
        problems,
        stored: await storedText(page, ["shards"]),
      });
    }

    // Assert: the DICOM site read every CT and MR image, in every transfer syntax, and said why it left
    // each other file out; no UID, patient id or file name is stored
    const [dicom, png] = summaries as [(typeof summaries)[0], (typeof summaries)[0]];
    // pydicom 2.3.1's files hold 14 CT images (3 at the top, two of them JPEG 2000; 11 in the DICOMDIR
    // tree) and 25 MR (the 8 decodable MR_small encodings; 17 in the tree)
    expect(expected.ct).toBe(14);
    expect(expected.mr).toBe(25);
    expect(dicom.examples).toBe(expected.examples);
    expect(dicom.text).toContain(`${expected.ct} (`); // label balance: CT count
    expect(dicom.text).toContain(`from ${expected.files} files`);
    const problemText = dicom.problems.join("\n");
    expect(problemText).toMatch(/Structured Report, not an image/);
    expect(problemText).toMatch(/DICOMDIR/);
    expect(problemText).toMatch(/RT Plan, not an image/);
    expect(problemText).toMatch(/8130 bytes|truncated|ends/); // MR_truncated.dcm
    for (const uid of expected.uids) expect(dicom.stored).not.toContain(uid);
    for (const id of expected.patients) expect(dicom.stored).not.toContain(id);
    expect(dicom.stored).not.toMatch(/MR_small|CT_small|dicomdirtests|pydicom/);
    // The PNG site: every 3 and 8 of site 1's folder, labelled by folder name
    const threes = readdirSync(join(folders[1] as string, "3")).length;
    const eights = readdirSync(join(folders[1] as string, "8")).length;
    expect(png.examples).toBe(threes + eights);
    expect(png.text).toContain(`8 ${eights} (`);
    expect(png.problems).toEqual([]);

    // Execute: a CNN round at each site, on wasm
    const results = [];
    for (const [i, page] of pages.entries())
      results.push(await trainUntilDone(page, summaries[i]?.holdout ?? 0, 300_000));

    // Assert
    for (const r of results) {
      expect(r.backend).toBe("wasm");
      expect(Number.isFinite(r.lossAfter)).toBe(true);
    }
    for (const invite of invites) {
      expect(await coordinator.storage.getModelVersions(invite?.federationId as string)).toEqual([0, 1]);
    }
    expect(errors).toEqual([]);
  });
});
