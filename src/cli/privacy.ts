import { parseArgs } from "node:util";
import { gdpEpsilon, noiseMultiplierForEpsilon, rdpEpsilon } from "../core/privacy/accounting";

/** What a CLI run produced; the caller writes it out and exits with `code`. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit code for a usage error: a missing, unknown or malformed flag. */
export const USAGE_ERROR = 2;

export const PRIVACY_USAGE = `Usage: fedward privacy --noise-multiplier Z --rounds T --delta D [--sampling-rate Q] [--steps-per-round S]
       fedward privacy --target-epsilon E --rounds T --delta D [--sampling-rate Q] [--steps-per-round S]

Privacy of T x S Gaussian releases with noise multiplier Z (noise std over L2 sensitivity).
With --noise-multiplier, prints
  epsilon_exact=<eps>      exact, by Gaussian DP (only without sampling, Q = 1)
  epsilon_rdp=<eps>        by Renyi DP with Poisson sampling at rate Q (default 1)
With --target-epsilon, prints
  noise_multiplier=<z>     the smallest Z meeting E (exact when Q = 1, else by Renyi DP)
`;

const OPTIONS = {
  "noise-multiplier": { type: "string" },
  "target-epsilon": { type: "string" },
  rounds: { type: "string" },
  "steps-per-round": { type: "string" },
  delta: { type: "string" },
  "sampling-rate": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** A flag the user got wrong: its message goes to stderr with exit code 2. */
class UsageError extends Error {}

/** Ten significant digits, without trailing zeros: enough to compare with other accountants. */
export function formatNumber(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(10))) : String(x);
}

function parseNumber(
  flag: string,
  text: string | undefined,
  valid: (x: number) => boolean,
  what: string,
): number {
  if (text === undefined) throw new UsageError(`--${flag} is required: give ${what}.`);
  const x = text.trim() === "" ? Number.NaN : Number(text);
  if (!valid(x)) throw new UsageError(`--${flag} must be ${what}, got "${text}".`);
  return x;
}

const isCount = (x: number) => Number.isSafeInteger(x) && x >= 1;
const isPositive = (x: number) => Number.isFinite(x) && x > 0;

interface Query {
  steps: number;
  delta: number;
  samplingRate: number | undefined;
  noiseMultiplier: number | undefined;
  targetEpsilon: number | undefined;
}

/** The flags, checked; throws UsageError naming the first bad one. */
function readQuery(values: Partial<Record<keyof typeof OPTIONS, string | boolean>>): Query {
  const text = (flag: keyof typeof OPTIONS) => values[flag] as string | undefined;
  const rounds = parseNumber("rounds", text("rounds"), isCount, "a whole number of rounds, 1 or more");
  const perRound =
    text("steps-per-round") === undefined
      ? 1
      : parseNumber("steps-per-round", text("steps-per-round"), isCount, "a whole number, 1 or more");
  const steps = rounds * perRound;
  if (!Number.isSafeInteger(steps)) throw new UsageError("--rounds times --steps-per-round is too large.");
  const delta = parseNumber(
    "delta",
    text("delta"),
    (x) => x > 0 && x < 1,
    "a number between 0 and 1, e.g. 1e-5",
  );
  const samplingRate =
    text("sampling-rate") === undefined
      ? undefined
      : parseNumber("sampling-rate", text("sampling-rate"), (x) => x > 0 && x <= 1, "a number in (0, 1]");
  const hasZ = text("noise-multiplier") !== undefined;
  const hasE = text("target-epsilon") !== undefined;
  if (hasZ === hasE) {
    throw new UsageError(
      "Give exactly one of --noise-multiplier (to get epsilon) and --target-epsilon (to get z).",
    );
  }
  const noiseMultiplier = hasZ
    ? parseNumber("noise-multiplier", text("noise-multiplier"), isPositive, "a number above 0, e.g. 1.1")
    : undefined;
  const targetEpsilon = hasE
    ? parseNumber("target-epsilon", text("target-epsilon"), isPositive, "a number above 0, e.g. 8")
    : undefined;
  return { steps, delta, samplingRate, noiseMultiplier, targetEpsilon };
}

/** The lines to print for a checked query. */
function answer(query: Query): string[] {
  const { steps, delta, samplingRate, noiseMultiplier, targetEpsilon } = query;
  if (targetEpsilon !== undefined) {
    const z = noiseMultiplierForEpsilon({ targetEpsilon, steps, delta, samplingRate: samplingRate ?? 1 });
    return [`noise_multiplier=${formatNumber(z)}`];
  }
  const z = noiseMultiplier as number;
  const lines: string[] = [];
  // T releases with the same z compose to mu = sqrt(T)/z (Dong, Roth, Su 2019, Cor. 3.3).
  if (samplingRate === undefined || samplingRate === 1) {
    lines.push(`epsilon_exact=${formatNumber(gdpEpsilon(Math.sqrt(steps) / z, delta))}`);
  }
  const rdp = rdpEpsilon({ samplingRate: samplingRate ?? 1, noiseMultiplier: z, steps, delta });
  lines.push(`epsilon_rdp=${formatNumber(rdp)}`);
  return lines;
}

/** `fedward privacy ...`: pure, so tests call it directly; fedward.ts does the I/O. */
export function runPrivacyCli(argv: string[]): CliResult {
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
    if (values.help) return { code: 0, stdout: PRIVACY_USAGE, stderr: "" };
    const lines = answer(readQuery(values));
    return { code: 0, stdout: `${lines.join("\n")}\n`, stderr: "" };
  } catch (error) {
    if (error instanceof UsageError || error instanceof RangeError || isParseArgsError(error)) {
      const message = `fedward privacy: ${(error as Error).message}\nRun "fedward privacy --help" for usage.\n`;
      return { code: USAGE_ERROR, stdout: "", stderr: message };
    }
    throw error;
  }
}

/** node:util parseArgs throws TypeErrors with codes ERR_PARSE_ARGS_* for unknown or malformed flags. */
function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}
