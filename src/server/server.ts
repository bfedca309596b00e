import { mkdir, readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { FastifyInstance } from "fastify";
import { parsePlan } from "../core/plan";
import { buildApp } from "./app";
import { type Config, ConfigError, loadConfig } from "./config";
import { DataDirLockedError, lockDataDir } from "./data-dir-lock";
import { type Db, openPglite, openPostgres } from "./db";
import { runMigrations } from "./migrations";
import { Storage } from "./storage";

export interface InviteLink {
  federationId: string;
  siteLabel: string;
  code: string;
  /** `${publicUrl}/?invite=<code>`: the link a site opens to enrol. */
  url: string;
}

export interface Coordinator {
  /** Where the coordinator listens, e.g. http://127.0.0.1:40123. */
  url: string;
  storage: Storage;
  /** Invites not used yet, across all federations. */
  invites: InviteLink[];
  /** `${publicUrl}/admin`: the admin page. */
  adminUrl: string;
  /** The admin token when this start made it (first start, or newAdminToken); otherwise undefined. */
  adminToken: string | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where the invite links and the address are printed; console.log by default. */
  print?: (line: string) => void;
  /** Replace the admin token with a new one (the old one stops working) and print it. */
  newAdminToken?: boolean;
}

export const NEW_ADMIN_TOKEN_FLAG = "--new-admin-token";

/**
 * PostgreSQL from DATABASE_URL, or PGlite in DATA_DIR under a lock file that keeps a second coordinator
 * off the same directory (see data-dir-lock.ts); closing the Db releases the lock.
 */
export async function openDb(
  config: Pick<Config, "databaseUrl" | "dataDir">,
  notice: (line: string) => void = console.warn,
): Promise<Db> {
  if (config.databaseUrl !== undefined) return openPostgres(config.databaseUrl);
  await mkdir(config.dataDir, { recursive: true });
  const lock = lockDataDir(config.dataDir, notice);
  try {
    const db = await openPglite(join(config.dataDir, "pglite"));
    return { ...db, close: () => db.close().finally(() => lock.release()) };
  } catch (error) {
    lock.release();
    throw error;
  }
}

/** Opens the database, makes the demo federation on first start, and listens. Tests call this in process. */
export async function startCoordinator(config: Config, options: StartOptions = {}): Promise<Coordinator> {
  const print = options.print ?? ((line: string) => console.log(line));
  const db = await openDb(config, print);
  let app: FastifyInstance | undefined;
  try {
    await runMigrations(db);
    const storage = new Storage(db);
    if ((await storage.listFederations()).length === 0) await createDemoFederation(config, storage);

    app = buildApp({ config, storage, logger: { level: config.logLevel } });
    await app.listen({ port: config.port, host: config.host });
    // Only once listening: a start that fails (port taken) must not make a token nobody saw.
    const adminToken = options.newAdminToken
      ? await storage.admin.replaceAdminToken()
      : await storage.admin.ensureAdminToken();
    const { port } = app.server.address() as AddressInfo;
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const url = `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${port}`;
    // Without PUBLIC_URL the links point at this machine; port 0 (tests) is only known after listen.
    const publicUrl = config.publicUrl ?? `http://localhost:${port}`;

    const invites = (await storage.listInvites())
      .filter((invite) => invite.siteId === null)
      .map(({ federationId, siteLabel, code }) => ({
        federationId,
        siteLabel,
        code,
        url: `${publicUrl}/?invite=${encodeURIComponent(code)}`,
      }));
    const adminUrl = `${publicUrl}/admin`;
    print(`fedward coordinator listening on ${url}`);
    if (invites.length > 0) {
      print("Unused invites (open one link per hospital site):");
      for (const invite of invites) print(`  ${invite.siteLabel}: ${invite.url}`);
    }
    print(`Admin page: ${adminUrl}`);
    if (adminToken !== undefined) {
      print(`  Admin token (shown this once; the coordinator keeps only its SHA-256): ${adminToken}`);
    } else {
      print(
        `  An admin token exists. To replace it, restart with \`npm run coordinator -- ${NEW_ADMIN_TOKEN_FLAG}\`.`,
      );
    }

    let closing: Promise<void> | undefined;
    const listening = app;
    const close = () => {
      closing ??= listening.close().then(() => db.close());
      return closing;
    };
    return { url, storage, invites, adminUrl, adminToken, close };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw error;
  }
}

async function createDemoFederation(config: Config, storage: Storage): Promise<void> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(config.demoPlanPath, "utf8"));
  } catch (error) {
    throw new ConfigError(
      `DEMO_PLAN: cannot read a JSON plan from ${config.demoPlanPath} (${(error as Error).message}); ` +
        "point DEMO_PLAN at a plan file.",
    );
  }
  const plan = parsePlan(json, `demo plan ${config.demoPlanPath}`);
  if (config.demoSites < plan.minSites) {
    throw new ConfigError(
      `DEMO_SITES is ${config.demoSites} but the demo plan needs ${plan.minSites} sites per round; ` +
        `set DEMO_SITES to at least ${plan.minSites}.`,
    );
  }
  const labels = Array.from({ length: config.demoSites }, (_, i) => `Site ${i + 1}`);
  await storage.createFederation(plan, labels);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((arg) => arg !== NEW_ADMIN_TOKEN_FLAG);
  if (unknown.length > 0) {
    console.error(
      `Unknown argument ${unknown.join(" ")}; the coordinator takes only ${NEW_ADMIN_TOKEN_FLAG} ` +
        "(its settings are environment variables, listed in README.md).",
    );
    process.exit(2);
  }
  // async: a bad configuration (loadConfig throws) rejects `starting` and is reported below.
  const starting = (async () =>
    startCoordinator(loadConfig(), { newAdminToken: args.includes(NEW_ADMIN_TOKEN_FLAG) }))();
  // Listened for before the start completes: a signal during start-up still closes the coordinator
  // (and frees DATA_DIR's lock) instead of killing it at once.
  const shutdown = (signal: string) => {
    console.log(`${signal} received; closing the coordinator.`);
    starting
      .then((coordinator) => coordinator.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
  try {
    await starting;
  } catch (error) {
    // Configuration and plan problems are the operator's to fix: print the sentence, not a stack.
    const known =
      error instanceof ConfigError ||
      error instanceof DataDirLockedError ||
      (error as Error).name === "PlanError";
    console.error(known ? (error as Error).message : error);
    process.exit(1);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
