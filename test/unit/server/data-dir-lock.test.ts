import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DataDirLockedError, LOCK_FILE, lockDataDir } from "../../../src/server/data-dir-lock";
import { startCoordinator } from "../../../src/server/server";
import { tempCoordinatorConfig } from "./helpers";

/** A pid that was just in use and now is not: a coordinator that died without removing its lock. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  expect(child.status).toBe(0);
  return child.pid as number;
}

function writeLock(dataDir: string, owner: { pid: number; host: string; started: string }): void {
  writeFileSync(join(dataDir, LOCK_FILE), JSON.stringify(owner));
}

const children: ChildProcess[] = [];

/**
 * The coordinator on `dataDir`, on any free port: as the operator starts it (`npx tsx`), or as one node
 * process (`--import tsx`) whose pid is the coordinator's own, so a signal reaches it and not a wrapper.
 */
function coordinatorProcess(
  dataDir: string,
  how: "npx" | "node" = "npx",
): ChildProcess & { output: () => string } {
  const env = { ...process.env, DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "silent", DATABASE_URL: undefined };
  const [command, args] =
    how === "npx"
      ? ["npx", ["tsx", "src/server/server.ts"]]
      : [process.execPath, ["--import", "tsx", "src/server/server.ts"]];
  const child = spawn(command as string, args as string[], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return Object.assign(child, { output: () => output });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the PGlite data directory lock", () => {
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  });
  const temp = tempCoordinatorConfig("fedward-lock-");
  const silent = { print: () => undefined };

  it("refuses a second coordinator on the same directory, naming the first, and opens again after close", async () => {
    // Prepare
    const first = await startCoordinator(temp.config, silent);
    const owner = JSON.parse(readFileSync(join(temp.dataDir, LOCK_FILE), "utf8"));

    // Execute
    const second = startCoordinator(temp.config, silent);

    // Assert: the message names the holder's pid, host and start time; the first still serves.
    await expect(second).rejects.toThrow(DataDirLockedError);
    await expect(second).rejects.toThrow(
      `Another coordinator (pid ${process.pid} on host ${hostname()}, started ${owner.started}) holds ` +
        `the data directory ${temp.dataDir}`,
    );
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect((await fetch(`${first.url}/api/health`)).status).toBe(200);

    await first.close();
    expect(existsSync(join(temp.dataDir, LOCK_FILE))).toBe(false);
    const again = await startCoordinator(temp.config, silent);
    expect((await again.storage.listFederations()).length).toBe(1);
    await again.close();
  });

  it("takes over a stale lock (its process is gone) with a notice", async () => {
    // Prepare
    const pid = deadPid();
    writeLock(temp.dataDir, { pid, host: hostname(), started: "2026-01-01T00:00:00.000Z" });
    const printed: string[] = [];

    // Execute
    const coordinator = await startCoordinator(temp.config, { print: (line) => printed.push(line) });

    // Assert
    expect(printed[0]).toBe(
      `fedward: took over the stale lock ${join(temp.dataDir, LOCK_FILE)}: process ${pid} ` +
        "(started 2026-01-01T00:00:00.000Z) is no longer running.",
    );
    expect(JSON.parse(readFileSync(join(temp.dataDir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    await coordinator.close();
  });

  it("refuses a lock held on another host (it cannot tell whether that one runs) and takes over its own pid's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fedward-lock-"));
    const notices: string[] = [];
    writeLock(dir, { pid: 1, host: "other-host.example", started: "2026-01-02T03:04:05.000Z" });

    expect(() => lockDataDir(dir, (line) => notices.push(line))).toThrow(
      "Another coordinator (pid 1 on host other-host.example, started 2026-01-02T03:04:05.000Z) holds",
    );

    // A previous coordinator that had this very pid (pid 1 in a restarted container) is gone.
    writeLock(dir, { pid: process.pid, host: hostname(), started: "2026-01-02T03:04:05.000Z" });
    const lock = lockDataDir(dir, (line) => notices.push(line));
    expect(notices).toEqual([
      `fedward: took over the stale lock ${lock.path}: its pid ${process.pid} is this process, which did not take it.`,
    ]);
    expect(() => lockDataDir(dir, () => undefined)).toThrow(`(pid ${process.pid} on host ${hostname()}`);
    lock.release();
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it("makes a second coordinator process exit non-zero with the message while the first runs", async () => {
    // Prepare: the first coordinator, in this process.
    const first = await startCoordinator(temp.config, silent);

    // Execute: a second one as the operator would start it.
    const second = coordinatorProcess(temp.dataDir);
    const code = await exitOf(second);

    // Assert
    expect(code).toBe(1);
    expect(second.output()).toContain(
      `Another coordinator (pid ${process.pid} on host ${hostname()}, started `,
    );
    expect(second.output()).toContain("use PostgreSQL (DATABASE_URL) to run several coordinators");
    expect((await fetch(`${first.url}/api/health`)).status).toBe(200);
    await first.close();
  }, 60_000);

  it("releases the lock when a coordinator process exits on SIGTERM", async () => {
    // Prepare
    const child = coordinatorProcess(temp.dataDir, "node");
    await until(() => child.output().includes("listening on"), "the coordinator to listen");
    const lock = JSON.parse(readFileSync(join(temp.dataDir, LOCK_FILE), "utf8"));
    expect(lock.pid).toBe(child.pid);

    // Execute
    child.kill("SIGTERM");

    // Assert
    expect(await exitOf(child)).toBe(0);
    expect(existsSync(join(temp.dataDir, LOCK_FILE))).toBe(false);
  }, 60_000);
});
