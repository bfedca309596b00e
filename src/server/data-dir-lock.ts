import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";

/**
 * PGlite is one process's database: a second coordinator on the same directory opens its own copy of
 * the files and the two silently lose each other's writes (issue 12 measured 2 of 4 enrolments and 2 of
 * 4 accepted uploads gone). So the data directory holds a lock file, created atomically ("wx"), naming
 * the coordinator that holds it; a second one refuses to start and names the first.
 */
export const LOCK_FILE = "coordinator.lock";

interface LockOwner {
  pid: number;
  host: string;
  /** ISO 8601. */
  started: string;
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): void;
}

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

/** Lock files this process holds: its own pid in a lock file is a live lock only if listed here. */
const held = new Set<string>();

/** An empty or half-written lock older than this is a crash between create and write, not a start. */
const UNWRITTEN_GRACE_MS = 5_000;

/**
 * Takes the lock on `dataDir` (which must exist), or throws DataDirLockedError naming the holder. A lock
 * whose process is gone from this host is taken over, and `notice` is told.
 */
export function lockDataDir(dataDir: string, notice: (line: string) => void): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const content = `${JSON.stringify(owner)}\n`;
  // Later attempts follow taking over a stale lock, or a lock that vanished while it was read.
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const stale = staleReason(path);
      if (stale === undefined) continue; // vanished meanwhile: try again
      if (typeof stale !== "string") throw lockedError(path, stale);
      takeOver(path, stale, notice);
      continue;
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    held.add(path);
    const releaseOnExit = () => release();
    const release = () => {
      if (!held.delete(path)) return;
      process.removeListener("exit", releaseOnExit);
      // Someone may have deleted the file by hand and another coordinator taken it since: leave theirs.
      if (readText(path) === content) unlinkQuietly(path);
    };
    // process.exit() anywhere (the SIGINT/SIGTERM handler, a fatal error) still frees the directory.
    process.on("exit", releaseOnExit);
    return { path, release };
  }
  throw new DataDirLockedError(
    `Another process keeps creating ${path} while this coordinator starts; stop the other coordinator.`,
  );
}

/**
 * Why the existing lock may be taken over (a sentence), or its live owner, or undefined when the file
 * is gone. A lock from another host cannot be checked from here, so it counts as live.
 */
function staleReason(path: string): string | LockOwner | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  const owner = parseOwner(text);
  if (owner === undefined) {
    const age = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if (age > UNWRITTEN_GRACE_MS) return "it names no process (a coordinator crashed while creating it)";
    return { pid: Number.NaN, host: "this host", started: "just now" };
  }
  if (owner.host !== hostname()) return owner;
  if (owner.pid === process.pid) {
    // Our own pid but not our lock: a previous coordinator with the same pid (pid 1 in a container).
    return held.has(path) ? owner : `its pid ${owner.pid} is this process, which did not take it`;
  }
  return isAlive(owner.pid) ? owner : `process ${owner.pid} (started ${owner.started}) is no longer running`;
}

/**
 * Moves the stale file aside and checks it is the one judged stale: if another coordinator took the lock
 * over in between, its lock is put back (link fails rather than overwrite) and this start refuses.
 */
function takeOver(path: string, reason: string, notice: (line: string) => void): void {
  const judged = readText(path);
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const moved = readText(aside);
  if (moved !== judged) {
    try {
      linkSync(aside, path);
    } catch {
      // a third process holds the lock now; ours is refused either way
    }
    unlinkQuietly(aside);
    const owner = parseOwner(moved ?? "");
    throw lockedError(path, owner ?? { pid: Number.NaN, host: "this host", started: "just now" });
  }
  unlinkQuietly(aside);
  notice(`fedward: took over the stale lock ${path}: ${reason}.`);
}

function lockedError(path: string, owner: LockOwner): DataDirLockedError {
  const who = Number.isNaN(owner.pid)
    ? "Another coordinator is starting on"
    : `Another coordinator (pid ${owner.pid} on host ${owner.host}, started ${owner.started}) holds`;
  return new DataDirLockedError(
    `${who} the data directory ${dirname(path)} (lock file ${path}). Two coordinators on one embedded ` +
      "database lose each other's writes, so this one did not start: stop the other one first, or use " +
      "PostgreSQL (DATABASE_URL) to run several coordinators. If no coordinator is running there, delete " +
      "the lock file.",
  );
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(value.pid) && typeof value.host === "string" && typeof value.started === "string") {
      return value as LockOwner;
    }
  } catch {
    // not JSON: half written
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
