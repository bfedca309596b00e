// fake-indexeddb stands in for the browser's IndexedDB in this unit test.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { StagedFact } from "../../../src/store/db";
import { hashFiles } from "../../../workers/import/hash-file";
import { PatientKeys, StagingWriter, stagedRange } from "../../../workers/import/staging";
import { freshDb } from "./support";

const fact: StagedFact = { kind: "problem", message: "a problem", rank: 0 };

describe("StagingWriter (one batch written while the next is parsed)", () => {
  it("writes every row once, in order, when batches overlap", async () => {
    const db = freshDb();
    const keys = new PatientKeys();
    const writer = new StagingWriter(db, "import-a", keys);
    for (let i = 0; i < 5; i++) keys.keyOf(`Patient/${i}`);
    for (let n = 0; n < 4_500; n++) await writer.add(n % 5, fact);
    await writer.flush();
    const rows = await stagedRange(db, "import-a", 0, 5);
    expect(rows).toHaveLength(4_500);
    expect(new Set(rows.map((r) => r.seq)).size).toBe(4_500);
    // Key order: by patient, then by write order.
    for (let i = 1; i < rows.length; i++) {
      const [a, b] = [rows[i - 1], rows[i]];
      expect(a && b && (a.patient < b.patient || (a.patient === b.patient && a.seq < b.seq))).toBe(true);
    }
  });

  it("surfaces a failed background write at the next batch or at flush, and settle() waits for it", async () => {
    const db = freshDb();
    const keys = new PatientKeys();
    keys.keyOf("Patient/x");
    // A row already at [import, 0, 0] makes the first batch's bulkAdd fail with a ConstraintError.
    await db.staging.add({ importId: "import-b", patient: 0, seq: 0, ...fact });
    const writer = new StagingWriter(db, "import-b", keys);
    for (let n = 0; n < 2_000; n++) await writer.add(0, fact); // starts the failing write, does not wait
    let thrown: unknown;
    try {
      for (let n = 0; n < 2_000; n++) await writer.add(0, fact);
      await writer.flush();
    } catch (error) {
      thrown = error;
    }
    expect(String(thrown)).toMatch(/Constraint|BulkError|exists/i);
    await writer.settle();
    await writer.settle(); // idempotent, and never throws
  });
});

describe("hashFiles", () => {
  it("gives each file's SHA-256 (WebCrypto whole and incremental streamed) and counts bytes", async () => {
    const big = new Uint8Array((8 << 20) + 3).map((_, i) => i % 251);
    const files = [new Blob(["abc"]), new Blob([big])];
    const seen: number[] = [];
    const hashes = await hashFiles(files, (n) => seen.push(n));
    expect(hashes[0]).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const expected = Buffer.from(await crypto.subtle.digest("SHA-256", big)).toString("hex");
    expect(hashes[1]).toBe(expected);
    expect(seen.at(-1)).toBe(3 + big.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });
});
