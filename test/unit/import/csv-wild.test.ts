import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { type Plan, PlanError, parsePlan } from "../../../src/core/plan";
import type { ImportProblem } from "../../../src/store/db";
import { importCsv } from "../../../workers/import/csv";
import type { ExampleSink, ParseStats } from "../../../workers/import/parser";
import { demoCsv, demoPlan, smallPlan } from "./support";

/** What a sink receives, kept in memory (the IndexedDB side is covered by demo-import.test.ts). */
interface Collected {
  xs: number[][];
  ys: number[];
  lines: number[];
  problems: ImportProblem[];
  stats: ParseStats;
}

async function collect(source: string, plan: Plan, chunkSize?: number): Promise<Collected> {
  const out: Omit<Collected, "stats"> = { xs: [], ys: [], lines: [], problems: [] };
  const sink: ExampleSink = {
    add(x, y, line) {
      out.xs.push([...x]);
      out.ys.push(y);
      out.lines.push(line);
    },
    problem: (p) => out.problems.push(p),
  };
  const stats = await importCsv(source, plan, sink, { fileName: "test.csv", chunkSize });
  return { ...out, stats };
}

/** Rewrites a plain CSV (no quotes inside) with another delimiter and decimal separator. */
function variant(csv: string, delimiter: string, decimalComma: boolean, lineEnd = "\n"): string {
  return csv
    .split(/\r?\n/)
    .map((line) => line.split(",").map((cell) => (decimalComma ? cell.replace(".", ",") : cell)))
    .map((cells) => cells.join(delimiter))
    .join(lineEnd);
}

describe("CSV as exported in the wild", () => {
  const original = demoCsv();

  it.each([
    ["semicolons and decimal commas (a European spreadsheet)", variant(original, ";", true)],
    [
      "semicolons, decimal commas, a UTF-8 BOM and CRLF line ends",
      `\uFEFF${variant(original, ";", true, "\r\n")}`,
    ],
    ["tabs", variant(original, "\t", false)],
    ["a BOM before a comma CSV", `\uFEFF${original}`],
    ["every cell quoted", variant(original, ",", false).replace(/[^,\n]+/g, (c) => `"${c}"`)],
  ])("gives the same examples as the original from %s", async (_, text) => {
    // Prepare
    const plan = demoPlan();
    const expected = await collect(original, plan);

    // Execute
    const got = await collect(text, plan, 4096);

    // Assert
    expect(expected.xs.length).toBeGreaterThan(150);
    expect(got.problems).toEqual([]);
    expect(got.xs).toEqual(expected.xs);
    expect(got.ys).toEqual(expected.ys);
    expect(got.lines).toEqual(expected.lines);
  });

  it("reads decimal commas only where the plan or the file says so", async () => {
    // Prepare: the plan insists on the dot, the file uses commas
    const plan = { ...demoPlan(), csv: { decimal: "." as const } };

    // Execute
    const got = await collect(variant(original, ";", true), plan);

    // Assert
    expect(got.xs).toHaveLength(0);
    expect(got.problems[0]?.message).toMatch(/^not a number \(digits and punctuation, \d+ characters?\)$/);
  });
});

describe("a headerless CSV with the plan's column list", () => {
  const sklearn = "../shared/data/tabular/breast_cancer.csv";
  const wdbc = "../shared/data/tabular/wdbc.csv";
  const present = existsSync(sklearn) && existsSync(wdbc);
  if (!present) console.warn(`csv-wild: ${sklearn} is absent, so the scikit-learn file is not tested here.`);

  it.runIf(present)("imports scikit-learn's breast_cancer.csv like the UCI table with a header", async () => {
    // Prepare: its first line "569,30,malignant,benign" is not a header; the last column is 0 = malignant
    const demo = demoPlan();
    const columns = [...demo.features.map((f) => f.column), "target"];
    const plan = parsePlan({
      ...demo,
      csv: { columns, skipLines: 1 },
      label: { column: "target", positive: "0", negative: "1" },
    });

    // Execute
    const headerless = await collect(readFileSync(sklearn, "utf8"), plan);
    const withHeader = await collect(readFileSync(wdbc, "utf8"), demo);

    // Assert
    expect(headerless.problems).toEqual([]);
    expect(headerless.xs).toHaveLength(569);
    expect(headerless.xs).toEqual(withHeader.xs);
    expect(headerless.ys).toEqual(withHeader.ys);
    expect(headerless.ys.filter((y) => y === 1)).toHaveLength(212); // 212 malignant, 357 benign
  });

  it("takes a header row that repeats the listed columns as a header, not as data", async () => {
    // Prepare
    const base = smallPlan();
    const plan = { ...base, csv: { columns: ["id", "age", "bmi", "outcome"] } };
    const text = "id,age,bmi,outcome\n1,60,30,yes\n";

    // Execute
    const got = await collect(text, plan);

    // Assert
    expect(got.stats.rowsRead).toBe(1);
    expect(got.xs).toEqual([[1, 1]]);
  });

  it("reads a headerless tab file with extra columns by position", async () => {
    // Prepare
    const base = smallPlan();
    const plan = { ...base, csv: { columns: ["id", "age", "bmi", "outcome"] } };
    const text = "7\t40\t20\tno\n8\t70\t35\tyes\n";

    // Execute
    const got = await collect(text, plan);

    // Assert
    expect(got.xs).toEqual([
      [-1, -1],
      [2, 2],
    ]);
    expect(got.ys).toEqual([0, 1]);
    expect(got.lines).toEqual([1, 2]);
  });

  it("refuses a column list that leaves out a column the plan reads, naming it", () => {
    // Prepare
    const raw = { ...smallPlan(), csv: { columns: ["age", "bmi"] } };

    // Execute
    const execute = () => parsePlan(raw);

    // Assert
    expect(execute).toThrow(PlanError);
    expect(execute).toThrow(/csv\.columns: does not list "outcome"/);
  });

  const digits = "../shared/data/tabular/digits.csv.gz";
  if (!existsSync(digits)) console.warn(`csv-wild: ${digits} is absent, so digits are not tested here.`);

  it.runIf(existsSync(digits))(
    "reads digits.csv.gz, 64 pixel columns and a label, with no header",
    async () => {
      // Prepare: digit 0 against digit 1 only; other digits are reported as not a class
      const pixels = Array.from({ length: 64 }, (_, i) => `p${i}`);
      const plan = parsePlan({
        ...demoPlan(),
        features: pixels.map((p) => ({ name: p, column: p, type: "number", mean: 8, std: 8 })),
        csv: { columns: [...pixels, "digit"] },
        label: { column: "digit", positive: "1", negative: "0" },
      });

      // Execute
      const got = await collect(gunzipSync(readFileSync(digits)).toString("utf8"), plan);

      // Assert: 178 zeros and 182 ones in scikit-learn's digits
      expect(got.ys.filter((y) => y === 0)).toHaveLength(178);
      expect(got.ys.filter((y) => y === 1)).toHaveLength(182);
      expect(got.stats.rowsSkipped).toBe(1797 - 360);
    },
  );
});

describe("categories and missing values", () => {
  function plan(missingNumber: "skip" | "mean" | "zero", missingCategory: "skip" | "zeros"): Plan {
    return parsePlan({
      ...smallPlan(),
      features: [
        { name: "age", column: "age", type: "number", mean: 50, std: 10, missing: missingNumber },
        {
          name: "sex",
          column: "sex",
          type: "category",
          levels: ["female", "male"],
          missing: missingCategory,
        },
      ],
    });
  }

  it("one-hot encodes a category over the plan's levels, in their order", async () => {
    // Execute
    const got = await collect("age,sex,outcome\n60,male,yes\n40,female,no\n", plan("skip", "skip"));

    // Assert
    expect(got.xs).toEqual([
      [1, 0, 1],
      [-1, 1, 0],
    ]);
  });

  it("reports a value outside the levels without quoting it, and skips the row", async () => {
    // Execute
    const got = await collect("age,sex,outcome\n60,Jane Doe,yes\n40,female,no\n", plan("skip", "zeros"));

    // Assert
    expect(got.xs).toHaveLength(1);
    expect(got.problems).toEqual([
      {
        line: 2,
        column: "sex",
        message: 'not one of the plan\'s levels "female", "male" (text, 8 characters)',
      },
    ]);
    expect(JSON.stringify(got.problems)).not.toContain("Jane");
  });

  it.each([
    ["mean", "zeros", [[0, 0, 0]], { age: 1, sex: 1 }],
    ["zero", "zeros", [[-5, 0, 0]], { age: 1, sex: 1 }],
  ] as const)(
    "imputes a missing number by %s and a missing category as %s, and counts them",
    async (n, c, xs, counts) => {
      // Execute
      const got = await collect("age,sex,outcome\n,,yes\n", plan(n, c));

      // Assert
      expect(got.problems).toEqual([]);
      expect(got.xs).toEqual(xs);
      expect(got.stats.imputed).toEqual(counts);
    },
  );

  it("skips and reports a missing value when the rule is skip", async () => {
    // Execute
    const got = await collect("age,sex,outcome\n,male,yes\n50,,no\n", plan("skip", "skip"));

    // Assert
    expect(got.xs).toHaveLength(0);
    expect(got.problems).toEqual([
      { line: 2, column: "age", message: "missing value" },
      { line: 3, column: "sex", message: "missing value" },
    ]);
    expect(got.stats.imputed).toEqual({});
  });
});
