import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apiPaths } from "../../../src/core/protocol";
import { ConfigError } from "../../../src/server/config";
import { startCoordinator } from "../../../src/server/server";
import { tempCoordinatorConfig } from "./helpers";

describe("startCoordinator", () => {
  const temp = tempCoordinatorConfig("fedward-server-");

  it("creates the demo federation on first start and prints only unused invites on later starts", async () => {
    // Prepare / Execute: first start.
    const printed: string[] = [];
    const first = await startCoordinator(temp.config, { print: (line) => printed.push(line) });
    const port = new URL(first.url).port;

    // Assert: three invite links on the listening port, a working API, one federation from the plan.
    expect(first.url).toBe(`http://127.0.0.1:${port}`);
    expect(first.invites.map((i) => i.siteLabel)).toEqual(["Site 1", "Site 2", "Site 3"]);
    for (const invite of first.invites) {
      expect(invite.url).toBe(`http://localhost:${port}/?invite=${invite.code}`);
      expect(printed.join("\n")).toContain(invite.url);
    }
    const federations = await first.storage.listFederations();
    expect(federations.map((f) => f.plan.id)).toEqual(["wdbc-demo"]);
    expect(await (await fetch(`${first.url}/api/health`)).json()).toEqual({ ok: true });
    const enrolled = await fetch(`${first.url}${apiPaths.enroll}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inviteCode: first.invites[0]?.code }),
    });
    expect(enrolled.status).toBe(200);
    await first.close();

    // Execute: second start on the same data directory.
    const again: string[] = [];
    const second = await startCoordinator(temp.config, { print: (line) => again.push(line) });

    // Assert: no second demo federation; the used invite is no longer printed.
    expect((await second.storage.listFederations()).map((f) => f.id)).toEqual(federations.map((f) => f.id));
    expect(second.invites.map((i) => i.siteLabel)).toEqual(["Site 2", "Site 3"]);
    expect(again.join("\n")).not.toContain(first.invites[0]?.code);
    await second.close();
  });

  it("refuses a demo plan that cannot be read, naming DEMO_PLAN", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fedward-server-"));
    const broken = { ...temp.config, dataDir: dir, demoPlanPath: join(dir, "missing.json") };

    await expect(startCoordinator(broken, { print: () => undefined })).rejects.toThrow(ConfigError);
    await expect(startCoordinator(broken, { print: () => undefined })).rejects.toThrow(/DEMO_PLAN/);
    await rm(dir, { recursive: true, force: true });
  });
});
