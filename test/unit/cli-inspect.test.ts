import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { runInspectCli } from "../../src/cli/inspect";

const PLAN = "public/demo/wdbc-plan.json";
let dirs: string[] = [];

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "fedward-inspect-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

describe("fedward inspect", () => {
  it("reports each demo file and totals the whole WDBC table (212 malignant, 357 benign)", async () => {
    // Execute
    const result = await runInspectCli([
      "--plan",
      PLAN,
      "public/demo/wdbc-site1.csv",
      "public/demo/wdbc-site2.csv",
      "public/demo/wdbc-site3.csv",
    ]);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "public/demo/wdbc-site1.csv: rows=190 examples=190 skipped=0 imputed=0 problems=0\n",
    );
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe(
      "examples=569 features=30 labels=malignant:212,benign:357 skipped=0 errors=0",
    );
  });

  it("walks a directory, reports bad rows by line and column, and counts files it cannot read as errors", async () => {
    // Prepare
    const header = readFileSync("public/demo/wdbc-site1.csv", "utf8").split("\n");
    const dir = tempDir({
      "a.csv": `${header[0]}\n${header[1]}\n${header[2]?.replace(/^[^,]+/, "")}\n`,
      "b.ndjson": '{"resourceType":"Patient"}\n',
      "c.csv": "no,such,columns\n1,2,3\n",
    });

    // Execute
    const result = await runInspectCli(["--plan", PLAN, dir]);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `${join(dir, "a.csv")}: rows=2 examples=1 skipped=1 imputed=0 problems=1\n`,
    );
    expect(result.stdout).toContain('  line 3, column "mean radius": missing value\n');
    expect(result.stdout).toContain(`${join(dir, "b.ndjson")}: error: not a CSV file`);
    expect(result.stdout).toMatch(/c\.csv: error: c\.csv is missing the columns "mean radius"/);
    expect(result.stdout.trimEnd().split("\n").at(-1)).toMatch(
      /^examples=1 features=30 labels=malignant:\d,benign:\d skipped=1 errors=2$/,
    );
  });

  it("exits 1 when nothing is importable", async () => {
    // Prepare
    const dir = tempDir({ "c.csv": "no,such,columns\n1,2,3\n" });

    // Execute
    const result = await runInspectCli(["--plan", PLAN, dir]);

    // Assert
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nothing importable/);
    expect(result.stdout).toMatch(/examples=0 features=30 labels=malignant:0,benign:0 skipped=0 errors=1\n$/);
  });

  it("exits 1 on an invalid plan, naming the field", async () => {
    // Prepare
    const dir = tempDir({ "plan.json": JSON.stringify({ id: "x" }) });

    // Execute
    const result = await runInspectCli(["--plan", join(dir, "plan.json"), "public/demo/wdbc-site1.csv"]);

    // Assert
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is not a valid federation plan\. Fix these fields: .*privacy/);
  });

  it.each([[[]], [["public/demo"]], [["--plan", PLAN]]])("exits 2 on a usage error (%j)", async (argv) => {
    // Execute
    const result = await runInspectCli(argv);

    // Assert
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Usage: fedward inspect/);
  });

  it("runs as a real process through the bin shim", () => {
    // Execute
    const stdout = execFileSync(
      process.execPath,
      [
        fileURLToPath(new URL("../../src/cli/fedward.mjs", import.meta.url)),
        "inspect",
        "--plan",
        PLAN,
        "public/demo/wdbc-site3.csv",
      ],
      { encoding: "utf8" },
    );

    // Assert
    expect(stdout).toMatch(/^examples=189 features=30 labels=malignant:\d+,benign:\d+ skipped=0 errors=0$/m);
  });
});

describe("fedward inspect on FHIR and OMOP exports", () => {
  const FHIR_PLAN = "public/demo/synthea-hypertension-plan.json";
  const DATA = "../shared/data";
  const present = existsSync(`${DATA}/fhir/synthea-r4-bulk`) && existsSync(`${DATA}/omop/synthea27nj-cdm54`);
  if (!present)
    console.warn(`cli-inspect: ${DATA} is absent, so FHIR and OMOP dry runs are not tested here.`);
  const last = (stdout: string) => stdout.trimEnd().split("\n").at(-1);

  it.runIf(present)("gives the same examples from the Synthea bulk export and from its bundles", async () => {
    // Execute
    const bulk = await runInspectCli(["--plan", FHIR_PLAN, `${DATA}/fhir/synthea-r4-bulk`]);
    const bundles = await runInspectCli(["--plan", FHIR_PLAN, `${DATA}/fhir/synthea-r4-bundles`]);

    // Assert: 199 patients; 13 born after 2016-01-01 and 21 dead before it are excluded
    const expected =
      "examples=165 features=13 labels=systolic above 140 within 3 years:36," +
      "no systolic above 140 within 3 years:129 skipped=0 errors=0";
    expect(bulk.code).toBe(0);
    expect(last(bulk.stdout)).toBe(expected);
    expect(last(bundles.stdout)).toBe(expected);
    expect(bulk.stdout).toContain("patients=199 examples=165 excluded=34 skipped=0");
  });

  it.runIf(present)("reads the OMOP tables of 28 persons with the same plan", async () => {
    // Execute
    const result = await runInspectCli(["--plan", FHIR_PLAN, `${DATA}/omop/synthea27nj-cdm54`]);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("PERSON rows=28 problems=0");
    expect(result.stdout).toContain("DRUG_EXPOSURE.csv.gz: not a table the cohort engine reads; not used");
    expect(result.stdout).toContain("patients=28 examples=24 excluded=4 skipped=0");
  });

  it.runIf(present)("refuses FHIR files and OMOP tables given together", async () => {
    // Execute
    const result = await runInspectCli([
      "--plan",
      FHIR_PLAN,
      `${DATA}/fhir/synthea-r4-bulk/Patient.000.ndjson.gz`,
      `${DATA}/omop/synthea27nj-cdm54/PERSON.csv.gz`,
    ]);

    // Assert
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("FHIR files and OMOP tables were given together");
  });

  it("reports a broken NDJSON line by line and byte, and still reads the rest", async () => {
    // Prepare: a patient, a cut-off line and a condition (a made-up record, no real patient)
    const dir = tempDir({
      "Patient.ndjson": `${JSON.stringify({ resourceType: "Patient", id: "p1", gender: "female", birthDate: "1970-01-01" })}\n{"resourceType":"Observation",\n`,
    });

    // Execute
    const result = await runInspectCli(["--plan", FHIR_PLAN, dir]);

    // Assert
    expect(result.stdout).toMatch(/Patient\.ndjson: resources=1 problems=1\n {2}.*line 2 \(byte \d+\)/);
    expect(result.stdout).toContain("patients=1 examples=1 excluded=0 skipped=0");
  });
});

describe("fedward inspect on image folders", () => {
  const DICOM = fileURLToPath(new URL("../../../shared/data/dicom/pydicom", import.meta.url));
  const haveDicom = existsSync(DICOM);
  if (!haveDicom) console.warn("fedward inspect DICOM test skipped: ../shared/data/dicom absent");

  it("matches the digits demo's PNG files to their folders' labels (pixels are decoded at the site)", async () => {
    const result = await runInspectCli([
      "--plan",
      "public/demo/digits-plan.json",
      "public/demo/digits/site1",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("decoded by the browser at the site");
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe(
      "examples=119 features=64 labels=8:58,3:61 skipped=0 errors=0",
    );
  });

  it.runIf(haveDicom)(
    "reads a DICOM folder with a labels CSV given by --labels, as the site would",
    async () => {
      // Prepare: CT_small (patient 1CT1) is CT, MR_small and its RLE twin (patient 4MR1) are MR
      const dir = tempDir({ "labels.csv": "patient,kind\n1CT1,CT\n4MR1,MR\n" });
      const plan = JSON.parse(readFileSync("public/demo/digits-plan.json", "utf8"));
      plan.image = {
        width: 16,
        height: 16,
        channels: 1,
        source: "dicom",
        labels: { key: "PatientID", column: "patient", labelColumn: "kind" },
      };
      plan.label = { positive: "CT", negative: "MR" };
      writeFileSync(join(dir, "plan.json"), JSON.stringify(plan));
      const files = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "rtplan.dcm"].map((f) =>
        join(DICOM, f),
      );

      // Execute
      const result = await runInspectCli([
        "--plan",
        join(dir, "plan.json"),
        "--labels",
        join(dir, "labels.csv"),
        ...files,
      ]);

      // Assert
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/rtplan\.dcm: it is an RT Plan, not an image/);
      expect(result.stdout).not.toContain("1CT1");
      expect(result.stdout.trimEnd().split("\n").at(-1)).toBe(
        "examples=3 features=256 labels=CT:1,MR:2 skipped=1 errors=0",
      );
    },
  );
});
