import { runAuditCli } from "./audit";
import { runInspectCli } from "./inspect";
import { type CliResult, runPrivacyCli, USAGE_ERROR } from "./privacy";

/**
 * The admin command line, `fedward <command> ...`. Commands are pure functions from arguments to a
 * CliResult; only `main` touches the process.
 */
export const USAGE = `Usage: fedward <command> [options]

Commands:
  privacy    epsilon of a plan (per patient, row or image) or of Gaussian noise, or the noise multiplier for a target
  inspect    a dry run of a site's import: what a plan would read from these files
  audit      an empirical epsilon lower bound (one-run audit) on a site's own data, next to the proven epsilon

Run "fedward <command> --help" for a command's options.
`;

const COMMANDS: Record<string, (argv: string[]) => CliResult | Promise<CliResult>> = {
  privacy: runPrivacyCli,
  inspect: runInspectCli,
  audit: runAuditCli,
};

/** Runs `fedward` on its arguments (without node and the script). */
export async function runFedwardCli(argv: string[]): Promise<CliResult> {
  const [command, ...rest] = argv;
  if (command === undefined) return { code: USAGE_ERROR, stdout: "", stderr: USAGE };
  if (command === "--help" || command === "-h" || command === "help")
    return { code: 0, stdout: USAGE, stderr: "" };
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run === undefined) {
    return {
      code: USAGE_ERROR,
      stdout: "",
      stderr: `fedward: unknown command "${command}". Commands: ${Object.keys(COMMANDS).join(", ")}.\n${USAGE}`,
    };
  }
  return run(rest);
}

/** The process entry (src/cli/fedward.mjs calls it): prints the result and sets the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { code, stdout, stderr } = await runFedwardCli(argv);
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  process.exitCode = code;
}
