import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { InputError } from "../core/errors";
import { dpSgdPrivacy, isDpSgd, type Plan, PlanError, parsePlan, privacyUnit } from "../core/plan";
import {
  gdpEpsilon,
  INTEGER_RDP_ORDERS,
  noiseMultiplierForEpsilon,
  rdpEpsilon,
} from "../core/privacy/accounting";
import { planPrivacy } from "../core/privacy/budget";
import { dpSgdSchedule } from "../core/privacy/dp-sgd";

/** What a CLI run produced; the caller writes it out and exits with `code`. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit code for a usage error: a missing, unknown or malformed flag. */
export const USAGE_ERROR = 2;

/** Exit code for a plan file that cannot be read or used at this site (as `fedward inspect`). */
export const INPUT_ERROR = 1;

export const PRIVACY_USAGE = `Usage: fedward privacy --plan PLAN.json --examples N [--target-epsilon E]
       fedward privacy --noise-multiplier Z --rounds T --delta D [--sampling-rate Q] [--steps-per-round S]
       fedward privacy --target-epsilon E --rounds T --delta D [--sampling-rate Q] [--steps-per-round S]

With --plan, the privacy of a federation plan at a site with N training units (patients, rows or images,
as the plan's unit says; a dp-sgd plan's q is its expectedBatchSize over N). Prints
  mechanism=<dp-sgd | site-update>
  unit=<patient | row | image | site> adjacency=<add-remove-one | replace-one> delta=<the plan's delta>
  round=<r> epsilon=<eps>  epsilon after rounds 1..r, one line per round
  epsilon=<eps>            epsilon after all of the plan's rounds, per unit
and with --target-epsilon, instead of the epsilon lines,
  noise_multiplier=<z>     the smallest privacy.noiseMultiplier meeting E over the whole plan at this N
A dp-sgd plan is accounted by Renyi DP at integer orders; a site-update plan (site-level noise only: the
unit is the site's whole dataset) exactly by Gaussian DP. N is only needed for a dp-sgd plan.

Without --plan: privacy of T x S Gaussian releases with noise multiplier Z (noise std over L2 sensitivity).
With --noise-multiplier, prints
  epsilon_exact=<eps>      exact, by Gaussian DP (only without sampling, Q = 1)
  epsilon_rdp=<eps>        by Renyi DP with Poisson sampling at rate Q (default 1)
With --target-epsilon, prints
  noise_multiplier=<z>     the smallest Z meeting E (exact when Q = 1, else by Renyi DP)
`;

const OPTIONS = {
  plan: { type: "string" },
  examples: { type: "string" },
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

/** delta as the other tools print it: 1e-05, 0.001. */
export function formatDelta(delta: number): string {
  if (delta >= 1e-3) return String(delta);
  const [mantissa, exponent] = delta.toExponential().split("e") as [string, string];
  const sign = exponent.startsWith("-") ? "-" : "+";
  return `${mantissa}e${sign}${exponent.replace(/^[-+]/, "").padStart(2, "0")}`;
}

/** A plan file the user named, read and validated; its problems are the user's to fix (exit 1). */
class PlanFileError extends Error {}

function readPlanFile(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new PlanFileError(`cannot read the plan file ${file}: ${(error as Error).message}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PlanFileError(`the plan file ${file} is not JSON: ${(error as Error).message}.`);
  }
  return parsePlan(json, `plan ${file}`);
}

/** The flags that a plan fixes itself, refused next to --plan so that nothing is silently ignored. */
const FIXED_BY_PLAN = ["noise-multiplier", "rounds", "steps-per-round", "delta", "sampling-rate"] as const;

/** `--plan PLAN.json --examples N [--target-epsilon E]`: the plan's epsilon (or z for E) at this site. */
function answerPlan(values: Partial<Record<keyof typeof OPTIONS, string | boolean>>): string[] {
  const text = (flag: keyof typeof OPTIONS) => values[flag] as string | undefined;
  const fixed = FIXED_BY_PLAN.find((flag) => text(flag) !== undefined);
  if (fixed !== undefined)
    throw new UsageError(`--${fixed} cannot be given with --plan: the plan fixes it (privacy and rounds).`);
  const targetEpsilon =
    text("target-epsilon") === undefined
      ? undefined
      : parseNumber("target-epsilon", text("target-epsilon"), isPositive, "a number above 0, e.g. 3");
  const plan = readPlanFile(text("plan") as string);
  const dp = isDpSgd(plan);
  if (dp && text("examples") === undefined)
    throw new UsageError(
      "--examples is required for a dp-sgd plan: give the site's number of training units (its N).",
    );
  const units =
    text("examples") === undefined
      ? 1
      : parseNumber("examples", text("examples"), isCount, "a whole number of training units, 1 or more");
  const { delta } = plan.privacy;
  const lines = dp
    ? ["mechanism=dp-sgd", `unit=${privacyUnit(plan)} adjacency=add-remove-one delta=${formatDelta(delta)}`]
    : ["mechanism=site-update", `unit=site adjacency=replace-one delta=${formatDelta(delta)}`];
  if (targetEpsilon !== undefined) {
    const z = dp
      ? noiseMultiplierForEpsilon({
          targetEpsilon,
          steps: plan.rounds * dpSgdPrivacy(plan).stepsPerRound,
          delta,
          samplingRate: dpSgdSchedule(plan, units).samplingRate,
          orders: INTEGER_RDP_ORDERS,
        })
      : noiseMultiplierForEpsilon({ targetEpsilon, steps: plan.rounds, delta });
    return [...lines, `noise_multiplier=${formatNumber(z)}`];
  }
  const { epsilonPerRound, epsilonAllRounds } = planPrivacy(plan, units);
  return [
    ...lines,
    ...epsilonPerRound.map((e, i) => `round=${i + 1} epsilon=${formatNumber(e)}`),
    `epsilon=${formatNumber(epsilonAllRounds)}`,
  ];
}

/** `fedward privacy ...`: pure but for reading a --plan file, so tests call it directly; fedward.ts does the rest. */
export function runPrivacyCli(argv: string[]): CliResult {
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
    if (values.help) return { code: 0, stdout: PRIVACY_USAGE, stderr: "" };
    if (values.plan === undefined && values.examples !== undefined)
      throw new UsageError("--examples goes with --plan: give the plan file too.");
    const lines = values.plan === undefined ? answer(readQuery(values)) : answerPlan(values);
    return { code: 0, stdout: `${lines.join("\n")}\n`, stderr: "" };
  } catch (error) {
    if (error instanceof UsageError || error instanceof RangeError || isParseArgsError(error)) {
      const message = `fedward privacy: ${(error as Error).message}\nRun "fedward privacy --help" for usage.\n`;
      return { code: USAGE_ERROR, stdout: "", stderr: message };
    }
    if (error instanceof PlanFileError || error instanceof PlanError || error instanceof InputError)
      return { code: INPUT_ERROR, stdout: "", stderr: `fedward privacy: ${error.message}\n` };
    throw error;
  }
}

/** node:util parseArgs throws TypeErrors with codes ERR_PARSE_ARGS_* for unknown or malformed flags. */
function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}
