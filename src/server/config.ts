import { resolve } from "node:path";

/** Everything the coordinator reads from its environment, validated once at start-up. */
export interface Config {
  port: number;
  host: string;
  /** Absolute path; PGlite keeps its files in `${dataDir}/pglite`. */
  dataDir: string;
  /** postgres:// URL; when set, the coordinator uses PostgreSQL instead of the embedded PGlite. */
  databaseUrl: string | undefined;
  /** Base URL for invite links, without a trailing slash; undefined = derived from the listening port. */
  publicUrl: string | undefined;
  /** Absolute path of the built static app (vite's dist/). */
  appDir: string;
  /** Absolute path of the plan used for the demo federation made on first start. */
  demoPlanPath: string;
  demoSites: number;
  /** "*" allows any origin: sites authenticate with bearer tokens, never cookies. */
  corsOrigins: "*" | string[];
  logLevel: LogLevel;
  limits: RequestLimits;
}

/** What one client may cost the coordinator: how long a request may take to arrive, and how often. */
export interface RequestLimits {
  /** Seconds for a whole request (headers and body) to arrive; slower ones are cut off with 408. */
  requestTimeoutS: number;
  /** Seconds for a request's headers to arrive (at most requestTimeoutS). */
  headersTimeoutS: number;
  /** Length of the window the two rate limits below count in. */
  rateLimitWindowS: number;
  /** Enrolment requests per client address per window; 0 turns the limit off. */
  enrollPerWindow: number;
  /** Requests with a wrong admin token per client address per window; 0 turns the limit off. */
  adminTokenFailuresPerWindow: number;
}

/**
 * Uploads of large models over a slow hospital link need minutes; headers never do. A site enrols once
 * and the admin page polls with the right token, so honest use stays far below both rate limits.
 */
export const defaultLimits: Readonly<RequestLimits> = {
  requestTimeoutS: 300,
  headersTimeoutS: 20,
  rateLimitWindowS: 60,
  enrollPerWindow: 30,
  adminTokenFailuresPerWindow: 30,
};

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** Reads the environment into a Config; throws one ConfigError listing every bad variable. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name} is "${raw}"; set it to a whole number from ${min} to ${max}, or unset it.`);
      return fallback;
    }
    return value;
  };

  const port = integer("PORT", 8080, 0, 65535);
  const demoSites = integer("DEMO_SITES", 3, 1, 1000);
  const requestTimeoutS = integer("REQUEST_TIMEOUT_S", defaultLimits.requestTimeoutS, 1, 3600);
  const headersTimeoutS = integer("HEADERS_TIMEOUT_S", defaultLimits.headersTimeoutS, 1, 3600);
  if (headersTimeoutS > requestTimeoutS) {
    problems.push(
      `HEADERS_TIMEOUT_S (${headersTimeoutS}) is above REQUEST_TIMEOUT_S (${requestTimeoutS}); ` +
        "the headers are part of the request, so set it to at most REQUEST_TIMEOUT_S.",
    );
  }
  const limits: RequestLimits = {
    requestTimeoutS,
    headersTimeoutS,
    rateLimitWindowS: integer("RATE_LIMIT_WINDOW_S", defaultLimits.rateLimitWindowS, 1, 86400),
    enrollPerWindow: integer("ENROLL_RATE_LIMIT", defaultLimits.enrollPerWindow, 0, 1_000_000),
    adminTokenFailuresPerWindow: integer(
      "ADMIN_TOKEN_FAILURE_LIMIT",
      defaultLimits.adminTokenFailuresPerWindow,
      0,
      1_000_000,
    ),
  };

  const databaseUrl = text("DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(
      "DATABASE_URL must start with postgres:// or postgresql://; unset it to use the embedded database.",
    );
  }

  let publicUrl = text("PUBLIC_URL");
  if (publicUrl !== undefined) {
    if (!isHttpUrl(publicUrl)) {
      problems.push(
        `PUBLIC_URL is "${publicUrl}"; set it to an http(s) URL such as https://fedward.example.org.`,
      );
    }
    // Invite links are built as `${publicUrl}/?invite=…`, so a trailing slash would double up.
    publicUrl = publicUrl.replace(/\/+$/, "");
  }

  const corsRaw = text("CORS_ORIGINS") ?? "*";
  let corsOrigins: "*" | string[] = "*";
  if (corsRaw !== "*") {
    corsOrigins = corsRaw
      .split(",")
      .map((origin) => origin.trim().replace(/\/+$/, ""))
      .filter((origin) => origin !== "");
    const bad = corsOrigins.filter((origin) => !isHttpUrl(origin));
    if (bad.length > 0 || corsOrigins.length === 0) {
      problems.push(
        `CORS_ORIGINS has ${bad.length > 0 ? `bad entries (${bad.join(", ")})` : "no entries"}; ` +
          'set it to "*" or a comma list of origins such as https://app.example.org,http://localhost:5173.',
      );
    }
  }

  const logLevel = (text("LOG_LEVEL") ?? "warn") as LogLevel;
  if (!logLevels.includes(logLevel)) {
    problems.push(`LOG_LEVEL is "${logLevel}"; set it to one of ${logLevels.join(", ")}.`);
  }

  if (problems.length > 0) {
    throw new ConfigError(`The coordinator's configuration is invalid:\n  ${problems.join("\n  ")}`);
  }
  return {
    port,
    host: text("HOST") ?? "127.0.0.1",
    dataDir: resolve(cwd, text("DATA_DIR") ?? ".fedward-data"),
    databaseUrl,
    publicUrl,
    appDir: resolve(cwd, text("APP_DIR") ?? "dist"),
    demoPlanPath: resolve(cwd, text("DEMO_PLAN") ?? "public/demo/wdbc-plan.json"),
    demoSites,
    corsOrigins,
    logLevel,
    limits,
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}
