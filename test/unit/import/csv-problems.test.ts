// fake-indexeddb stands in for the browser's IndexedDB in this unit test; the real one is covered by the
// browser e2e. It must load before Dexie so Dexie finds it.
import "fake-indexeddb/auto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getCompleteDataset } from "../../../src/store/datasets";
import { ImportError } from "../../../workers/import/parser";
import { everythingStored, FakeFileReader, freshDb, importText, smallPlan, storedSplit } from "./support";

afterEach(() => vi.unstubAllGlobals());

/** Identifiers in extra columns, bad cells, a quoted comma, a quoted line break and a blank line. */
const LINES = [
  "name,mrn,age,bmi,outcome", //                 line 1
  "Alice Smith,MRN-001,61,27.5,yes", //          line 2: ok
  "Bob Jones,MRN-002,,30,no", //                 line 3: missing age
  "Carol White,MRN-003,55,abc,no", //            line 4: bmi not a number
  "Dan Brown,MRN-004,40,22,maybe", //            line 5: unknown class
  '"Eve, Quoted",MRN-005," 45 ","21.5",no', //   line 6: ok
  "", //                                         line 7: blank, not a row
  '"Frank', //                                   line 8: a name across two lines...
  'Multiline",MRN-006,70,31,yes', //             line 9: ...ok, reported as line 8
  "Gina Grey,MRN-007,0x1F,Infinity,  no  ", //   line 10: two bad cells
  "Hank Hill,MRN-008,38,19,no", //               line 11: ok
];
const IDENTIFIERS = ["Alice", "Smith", "MRN-00", "Eve", "Frank", "Multiline", "Gina", "Hank"];
const EXPECTED_PROBLEMS = [
  { line: 3, column: "age", message: "missing value" },
  { line: 4, column: "bmi", message: "not a number (text, 3 characters)" },
  { line: 5, column: "outcome", message: 'not a class (text, 5 characters): expected "yes" or "no"' },
  { line: 10, column: "age", message: "not a number (text, 4 characters)" },
  { line: 10, column: "bmi", message: "not a number (text, 8 characters)" },
];

describe.each([
  ["LF", "\n"],
  ["CRLF", "\r\n"],
])("a CSV with problems and identifiers (%s line endings)", (_name, eol) => {
  const text = LINES.join(eol) + eol;

  it("skips bad rows and reports each bad cell by line and column", async () => {
    // Prepare
    const db = freshDb();

    // Execute
    const dataset = await importText(db, text, smallPlan());

    // Assert
    expect(dataset.problems).toEqual(EXPECTED_PROBLEMS);
    expect(dataset).toMatchObject({
      rowsRead: 8,
      rowsSkipped: 4,
      problemCount: 5,
      positives: 2,
      negatives: 2,
    });
    expect(dataset.numTrain + dataset.numHoldout).toBe(4);
  });

  it("stores only the plan's features and label, never the identifiers", async () => {
    // Prepare
    const db = freshDb();

    // Execute
    const dataset = await importText(db, text, smallPlan(0.01));
    const stored = await everythingStored(db);
    const train = await storedSplit(db, dataset.id, "train");

    // Assert: with almost no holdout, the four good rows in file order: lines 2, 6, 8, 11
    for (const identifier of IDENTIFIERS) expect(stored).not.toContain(identifier);
    expect(train.x).toEqual([1.1, 0.5, -0.5, -0.7, 2, 1.2, -1.2, -1.2].map(Math.fround));
    expect(train.y).toEqual([1, 0, 1, 0]);
  });

  it("gives the same result however the file is cut into chunks, read as a Blob through FileReader", async () => {
    // Prepare
    vi.stubGlobal("FileReader", FakeFileReader);
    FakeFileReader.reads = 0;
    const blob = new Blob([text]);

    // Execute
    const results = [];
    for (const chunkSize of [32, 33, 47, 64, 1 << 20]) {
      const db = freshDb();
      const dataset = await importText(db, blob, smallPlan(0.01), { chunkSize });
      results.push({ problems: dataset.problems, train: await storedSplit(db, dataset.id, "train") });
    }

    // Assert
    expect(FakeFileReader.reads).toBeGreaterThan(20);
    for (const result of results) {
      expect(result.problems).toEqual(EXPECTED_PROBLEMS);
      expect(result.train.y).toEqual([1, 0, 1, 0]);
    }
  });
});

describe("fatal problems with a file", () => {
  it("names the missing columns and the columns found, and keeps the previous dataset", async () => {
    // Prepare
    const db = freshDb();
    const previous = await importText(db, LINES.join("\n"), smallPlan());
    const before = await everythingStored(db);
    const text = "name,AGE,outcome\nAlice,61,yes\n";

    // Execute
    const result = importText(db, text, smallPlan(), { fileName: "export-2024.csv" });

    // Assert
    await expect(result).rejects.toThrow(ImportError);
    await expect(result).rejects.toThrow(
      'export-2024.csv is missing the columns "age", "bmi" that the plan needs. Columns found: "name", "AGE", "outcome".',
    );
    expect(await everythingStored(db)).toBe(before);
    expect((await getCompleteDataset(db, "fed-a"))?.id).toBe(previous.id);
  });

  it("refuses a plan column that appears twice", async () => {
    // Prepare
    const db = freshDb();
    const text = "age,bmi,age,outcome\n61,27,62,yes\n";

    // Execute
    const result = importText(db, text, smallPlan(), { fileName: "twice.csv" });

    // Assert
    await expect(result).rejects.toThrow('twice.csv has the column "age" more than once');
    expect(await db.datasets.count()).toBe(0);
  });

  it("refuses a file where no row is usable, quoting the first problem, and writes nothing", async () => {
    // Prepare
    const db = freshDb();
    const text = "age,bmi,outcome\n61,,yes\nold,20,no\n";

    // Execute
    const result = importText(db, text, smallPlan(), { fileName: "bad.csv" });

    // Assert
    await expect(result).rejects.toThrow(
      'bad.csv has no usable rows: all 2 rows have problems (the first: line 2, column "bmi": missing value).',
    );
    expect(await db.datasets.count()).toBe(0);
    expect(await db.shards.count()).toBe(0);
  });

  it.each([
    ["an empty file", "", "empty.csv is empty"],
    [
      "a header alone",
      "age,bmi,outcome\r\n",
      "empty.csv has no usable rows: it has a header but no data rows",
    ],
  ])("refuses %s", async (_name, text, message) => {
    // Prepare
    const db = freshDb();

    // Execute
    const result = importText(db, text, smallPlan(), { fileName: "empty.csv" });

    // Assert
    await expect(result).rejects.toThrow(message);
    expect(await db.datasets.count()).toBe(0);
  });
});

describe("other CSV dialects", () => {
  it("reads semicolon-separated files with a byte-order mark and quoted headers", async () => {
    // Prepare
    const db = freshDb();
    const text = '\uFEFF"age";"bmi";"outcome";"mrn"\r\n61;27.5;yes;M1\r\n40;22;no;M2\r\n';

    // Execute
    const dataset = await importText(db, text, smallPlan());

    // Assert
    expect(dataset).toMatchObject({ rowsRead: 2, rowsSkipped: 0, positives: 1, negatives: 1 });
  });

  it("reports a row with broken quotes instead of guessing its cells", async () => {
    // Prepare
    const db = freshDb();
    const text = 'name,age,bmi,outcome\nAl,61,27,yes\n"Bo"b,40,22,no\n';

    // Execute
    const dataset = await importText(db, text, smallPlan());

    // Assert
    expect(dataset.problems).toHaveLength(1);
    expect(dataset.problems[0]).toMatchObject({ line: 3, column: "(whole row)" });
    expect(dataset).toMatchObject({ rowsRead: 2, rowsSkipped: 1 });
  });
});
