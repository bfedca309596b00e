import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "vite";
import { loadConfig } from "../../src/server/config";
import { type Coordinator, startCoordinator } from "../../src/server/server";

/** The built app the coordinator serves; `npm test` builds it first, a lone e2e run builds it here. */
export async function ensureBuiltApp(): Promise<string> {
  const dist = resolve("dist");
  if (!existsSync(join(dist, "index.html"))) await build({ logLevel: "warn" });
  return dist;
}

/**
 * A real coordinator on a free loopback port with a fresh PGlite database in a temp directory; `env` sets
 * its configuration as the environment would (e.g. DEMO_PLAN for another demo federation).
 */
export async function freshCoordinator(
  env: Record<string, string> = {},
): Promise<Coordinator & { dispose(): Promise<void> }> {
  const appDir = await ensureBuiltApp();
  const dataDir = mkdtempSync(join(tmpdir(), "fedward-coord-"));
  const coordinator = await startCoordinator(
    { ...loadConfig(env), port: 0, host: "127.0.0.1", dataDir, appDir, logLevel: "silent" },
    { print: () => {} },
  );
  return {
    ...coordinator,
    async dispose() {
      await coordinator.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
