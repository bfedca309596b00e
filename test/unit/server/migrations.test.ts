import { afterAll, describe, expect, it } from "vitest";
import { openPglite } from "../../../src/server/db";
import { migrations, runMigrations } from "../../../src/server/migrations";

describe("runMigrations", () => {
  const opened: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    for (const db of opened) await db.close();
  });

  it("applies every migration once and nothing on a second run", async () => {
    // Prepare
    const db = await openPglite();
    opened.push(db);

    // Execute
    const first = await runMigrations(db);
    const second = await runMigrations(db);

    // Assert
    expect(first).toEqual(migrations.map((m) => m.version));
    expect(second).toEqual([]);
    const recorded = await db.query<{ version: number }>(
      "SELECT version FROM schema_migrations ORDER BY version",
    );
    expect(recorded.map((r) => r.version)).toEqual(first);
    const tables = await db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      "federations",
      "invites",
      "models",
      "schema_migrations",
      "sites",
      "updates",
    ]);
  });

  it("numbers migrations strictly increasing from 1", () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
  });
});
