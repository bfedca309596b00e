import { createHash } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { adminPaths } from "../../../src/core/admin-protocol";
import { openPglite } from "../../../src/server/db";
import { hashToken, tokenMatchesHash } from "../../../src/server/secrets";
import { startCoordinator } from "../../../src/server/server";
import { tempCoordinatorConfig } from "./helpers";

describe("admin token", () => {
  const temp = tempCoordinatorConfig("fedward-admin-token-");

  const federations = (url: string, token: string) =>
    fetch(`${url}${adminPaths.federations}`, { headers: { authorization: `Bearer ${token}` } });

  it("is made at first start, printed once with the admin URL, stored only as its SHA-256, and replaced on demand", async () => {
    // Execute: first start.
    const printed: string[] = [];
    const first = await startCoordinator(temp.config, { print: (line) => printed.push(line) });
    const token = first.adminToken as string;
    const port = new URL(first.url).port;

    // Assert: 256 random bits in base64url, printed once after the admin URL, and it opens the admin API.
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.adminUrl).toBe(`http://localhost:${port}/admin`);
    expect(printed.filter((line) => line.includes(token))).toHaveLength(1);
    const adminLine = printed.indexOf(`Admin page: http://localhost:${port}/admin`);
    expect(adminLine).toBeGreaterThan(-1);
    expect(printed[adminLine + 1]).toContain(token);
    expect((await federations(first.url, token)).status).toBe(200);
    await first.close();

    // Assert: the database holds the SHA-256 of the token and not the token.
    const db = await openPglite(join(temp.dataDir, "pglite"));
    const rows = await db.query<Record<string, unknown>>("SELECT * FROM admin_token");
    await db.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(createHash("sha256").update(token).digest("hex"));
    expect(JSON.stringify(rows)).not.toContain(token);

    // Execute: a second start, then a start asking for a new token.
    const again: string[] = [];
    const second = await startCoordinator(temp.config, { print: (line) => again.push(line) });
    const secondUrl = second.url;
    const stillWorks = (await federations(secondUrl, token)).status;
    await second.close();
    const renewed: string[] = [];
    const third = await startCoordinator(temp.config, {
      print: (line) => renewed.push(line),
      newAdminToken: true,
    });
    const newToken = third.adminToken as string;
    const oldStatus = (await federations(third.url, token)).status;
    const newStatus = (await federations(third.url, newToken)).status;
    await third.close();

    // Assert: the second start says a token exists and how to replace it, and prints none.
    expect(second.adminToken).toBeUndefined();
    expect(stillWorks).toBe(200);
    expect(again.join("\n")).not.toContain(token);
    expect(again.join("\n")).toContain("An admin token exists");
    expect(again.join("\n")).toContain("npm run coordinator -- --new-admin-token");
    // The third start printed a different token; the old one no longer opens the API.
    expect(newToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newToken).not.toBe(token);
    expect(renewed.filter((line) => line.includes(newToken))).toHaveLength(1);
    expect(oldStatus).toBe(401);
    expect(newStatus).toBe(200);
  });

  it("compares a presented token with the stored hash", () => {
    const stored = hashToken("the-admin-token");

    expect(tokenMatchesHash("the-admin-token", stored)).toBe(true);
    expect(tokenMatchesHash("the-admin-tokeN", stored)).toBe(false);
    expect(tokenMatchesHash("", stored)).toBe(false);
    // A damaged stored hash (wrong length) refuses instead of throwing.
    expect(tokenMatchesHash("the-admin-token", stored.slice(0, 10))).toBe(false);
  });
});
