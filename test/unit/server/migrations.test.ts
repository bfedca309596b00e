import { afterAll, describe, expect, it } from "vitest";
import { openPglite } from "../../../src/server/db";
import { migrations } from "../../../src/server/migrations";
import { expectMigrationsApplyOnce } from "./helpers";

describe("runMigrations", () => {
  const opened: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    for (const db of opened) await db.close();
  });

  it("applies every migration once and nothing on a second run", async () => {
    // Prepare
    const db = await openPglite();
    opened.push(db);

    // Execute and assert
    await expectMigrationsApplyOnce(db);
  });

  it("numbers migrations strictly increasing from 1", () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
  });
});
