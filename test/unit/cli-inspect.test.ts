import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
