import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, a postmaster listening on
 * 127.0.0.1 only (and a Unix socket inside that directory), stopped and deleted by `stop()`. PostgreSQL
 * refuses to run as root, so under root (CI) the cluster belongs to the `postgres` user (or `nobody`).
 */
export interface TestPostgres {
  /** The server's binaries, e.g. /usr/lib/postgresql/15/bin. */
  readonly binDir: string;
  readonly port: number;
  /** A connection string for `database` on this cluster (superuser `fedward`, trust authentication). */
  url(database?: string): string;
  /** Creates an empty database and returns its connection string. */
  createDatabase(name: string): Promise<string>;
  /** Stops the postmaster and deletes the cluster's directory. Safe to call twice. */
  stop(): Promise<void>;
}

export const TEST_PG_USER = "fedward";

const run = promisify(execFile);

const installHint =
  "PostgreSQL's server binaries (initdb, pg_ctl, postgres) were not found, and the PostgreSQL tests need " +
  "a real server. Install them with `apt-get install -y postgresql` (Debian/Ubuntu; .ci/run does this), " +
  "or set PG_BINDIR to the directory that holds initdb.";

/** Where initdb and pg_ctl live: $PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/<newest>/bin, PATH. */
export function findPostgresBinDir(): string | undefined {
  const hasServer = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"));
  const explicit = process.env.PG_BINDIR;
  if (explicit) return hasServer(explicit) ? explicit : undefined;
  const candidates: string[] = [];
  try {
    // Debian's pg_config may come from libpq-dev without any server, hence the check below.
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: "pipe" }).trim());
  } catch {
    // no pg_config on PATH
  }
  if (existsSync("/usr/lib/postgresql")) {
    const versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  }
  candidates.push(...(process.env.PATH ?? "").split(delimiter).filter(Boolean));
  return candidates.find(hasServer);
}

/** The unprivileged account a root process runs the cluster as. */
function clusterAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync("/etc/passwd", "utf8").split("\n");
  for (const name of ["postgres", "nobody"]) {
    const fields = passwd.find((line) => line.startsWith(`${name}:`))?.split(":");
    if (fields) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error("running as root, but neither a `postgres` nor a `nobody` user exists to run PostgreSQL");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a fresh cluster; throws with an install hint when PostgreSQL is not installed. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const binDir = findPostgresBinDir();
  if (binDir === undefined) {
    const explicit = process.env.PG_BINDIR;
    throw new Error(
      explicit ? `PG_BINDIR is "${explicit}", which has no initdb and pg_ctl. ${installHint}` : installHint,
    );
  }
  const account = clusterAccount();
  // Under root, os.tmpdir() may be a directory the postgres user cannot enter; /tmp always works.
  const root = await mkdtemp(join(account ? "/tmp" : tmpdir(), "fedward-pg-"));
  const dataDir = join(root, "data");
  const logFile = join(root, "postgres.log");
  const options = { cwd: root, ...account, env: { ...process.env, LC_ALL: "C" } };
  const pgCtl = join(binDir, "pg_ctl");
  const stopNow = () => {
    try {
      execFileSync(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "stop"], { ...options, stdio: "ignore" });
    } catch {
      // not running
    }
  };
  let started = false;
  // A test worker that dies without afterAll must not leave a postmaster behind.
  const onExit = () => {
    if (started) stopNow();
  };

  try {
    if (account) await chown(root, account.uid, account.gid);
    await run(
      join(binDir, "initdb"),
      ["-D", dataDir, "-A", "trust", "-U", TEST_PG_USER, "-E", "UTF8", "--locale=C", "--no-sync"],
      options,
    );
    let port = 0;
    for (let attempt = 1; !started; attempt++) {
      port = await freePort();
      const serverOptions = [
        `-k '${root}'`,
        `-p ${port}`,
        "-c listen_addresses=127.0.0.1",
        // A throwaway cluster needs no durability.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
      ].join(" ");
      try {
        await run(
          pgCtl,
          ["-D", dataDir, "-l", logFile, "-o", serverOptions, "-w", "-t", "60", "start"],
          options,
        );
        started = true;
      } catch (error) {
        // Another process may have taken the port between freePort() and the postmaster's bind.
        if (attempt >= 3) throw error;
      }
    }
    process.once("exit", onExit);

    const url = (database = "postgres") =>
      `postgresql://${TEST_PG_USER}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    let stopping: Promise<void> | undefined;
    return {
      binDir,
      port,
      url,
      async createDatabase(name) {
        const client = new pg.Client({ connectionString: url() });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
        } finally {
          await client.end();
        }
        return url(name);
      },
      stop() {
        stopping ??= (async () => {
          process.removeListener("exit", onExit);
          await run(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "stop"], options).catch(stopNow);
          await rm(root, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (error) {
    const log = await readFile(logFile, "utf8").catch(() => "");
    const stderr = (error as { stderr?: string }).stderr ?? "";
    if (started) stopNow();
    process.removeListener("exit", onExit);
    await rm(root, { recursive: true, force: true });
    throw new Error(
      `could not start a test PostgreSQL with ${binDir}: ${(error as Error).message}\n${stderr}\n${log}`.trim(),
    );
  }
}
