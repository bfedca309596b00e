import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

/**
 * A real coordinator process (src/server/server.ts), for tests and benches that need more than one, a
 * kill -9 or the coordinator's own memory. It runs as one node process (`--import tsx`, not `npx tsx`,
 * which would put wrappers in between), so `pid` is the coordinator and a signal reaches it.
 */
export interface CoordinatorProcess {
  readonly pid: number;
  /** e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** The unused invites it printed, in order: label and code. */
  readonly invites: { siteLabel: string; code: string }[];
  /** Printed only by the start that made it. */
  readonly adminToken: string | undefined;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (null after a signal) once the process is gone. */
  exited: Promise<number | null>;
  /** SIGKILL: no shutdown handler runs. */
  kill(): Promise<void>;
  /** SIGTERM, the graceful shutdown; resolves with the exit code. */
  stop(): Promise<number | null>;
}

const root = resolve(import.meta.dirname, "../..");

/** Starts a coordinator with `env` on top of this process's (PORT=0: any free port) and waits for it to listen. */
export async function startCoordinatorProcess(
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<CoordinatorProcess> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/server/server.ts"], {
    cwd: root,
    env: { ...process.env, PORT: "0", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  // A test runner that dies must not leave coordinators behind.
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  void exited.then(() => process.removeListener("exit", onExit));

  const ready = /Admin token \(shown this once[^:]*: (\S+)|An admin token exists/;
  const end = Date.now() + timeoutMs;
  while (!ready.test(output)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
      child.kill("SIGKILL");
      throw new Error(`the coordinator did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = /listening on (\S+)/.exec(output)?.[1] as string;
  const invites = [...output.matchAll(/^ {2}(.+): \S+\?invite=(\S+)$/gm)].map((m) => ({
    siteLabel: m[1] as string,
    code: decodeURIComponent(m[2] as string),
  }));
  return {
    pid: child.pid as number,
    url,
    invites,
    adminToken: ready.exec(output)?.[1],
    output: () => output,
    exited,
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
    stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
