import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { importCsv } from "../../workers/import/csv";
import type { ExampleSink } from "../../workers/import/parser";
import { cohortSpecOf, inputWidth, type Plan, parsePlan } from "../core/plan";
import type { ImportProblem } from "../store/db";
import { inspectCohort } from "./inspect-cohort";
import { inspectImages } from "./inspect-images";
import { type CliResult, USAGE_ERROR } from "./privacy";

/**
 * `fedward inspect`: a dry run of the site's import on a data engineer's machine, in Node, on the same
 * pipeline the browser's import worker runs (workers/import). Nothing is stored and nothing is sent; the
 * report names files, lines and columns but never quotes a cell.
 */
export const INSPECT_USAGE = `Usage: fedward inspect --plan PLAN.json [--labels LABELS.csv] FILE_OR_DIR...

Reads each file (directories recursively) as the site's import would, and prints a report per file and
a last line. For a plan on FHIR or OMOP exports, the files are one export, joined by patient. For an
image plan, every DICOM file is read as the site would (PNG and JPEG only matched to their labels), with
labels from --labels LABELS.csv, the one CSV among the files, or folder names, as the plan says:
  examples=<n> features=<model inputs> labels=<class:count,...> skipped=<rows> errors=<files>
Exits with 1 when the plan is invalid or nothing is importable, 2 on a usage error.
`;

/** Problems shown per file; the counts cover them all. */
const SHOWN_PROBLEMS = 5;
const CSV_NAME = /\.(csv|tsv|txt)$/i;
const COHORT_NAME = /\.(ndjson|json|csv)(\.gz)?$/i;

interface FileReport {
  examples: number;
  positives: number;
  skipped: number;
  error: boolean;
  text: string;
}

export async function runInspectCli(argv: string[]): Promise<CliResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    return {
      code: USAGE_ERROR,
      stdout: "",
      stderr: `fedward inspect: ${(e as Error).message}\n${INSPECT_USAGE}`,
    };
  }
  if (parsed.help) return { code: 0, stdout: INSPECT_USAGE, stderr: "" };
  let plan: Plan;
  try {
    plan = parsePlan(JSON.parse(readFileSync(parsed.plan, "utf8")), `plan ${parsed.plan}`);
  } catch (e) {
    return { code: 1, stdout: "", stderr: `fedward inspect: ${(e as Error).message}\n` };
  }
  const files = parsed.paths.flatMap(listFiles);
  const reports: FileReport[] = [];
  if (plan.image) {
    // An image plan: every DICOM (or PNG/JPEG) file of the folders is one example (inspect-images.ts).
    const roots = parsed.paths.map((root) => ({ root, files: listFiles(root) }));
    try {
      const r = await inspectImages(roots, plan, parsed.labels);
      reports.push({ ...r, error: false });
    } catch (e) {
      reports.push({
        examples: 0,
        positives: 0,
        skipped: 0,
        error: true,
        text: `error: ${(e as Error).message}\n`,
      });
    }
  } else if (cohortSpecOf(plan)) {
    // A cohort plan joins every file's records by patient, so its report is one for the whole export.
    const r = await inspectCohort(
      files.filter((f) => COHORT_NAME.test(f)),
      plan,
    );
    const ignored = files.filter((f) => !COHORT_NAME.test(f));
    const notes = ignored
      .map((f) => `${f}: error: not a FHIR (.ndjson, .json) or OMOP (.csv) file\n`)
      .join("");
    reports.push({ ...r, text: notes + r.text, error: false });
    // Files that could not be read at all count as errors in the last line, one each.
    const failed = r.errors + ignored.length;
    for (let i = 0; i < failed; i++)
      reports.push({ examples: 0, positives: 0, skipped: 0, error: true, text: "" });
  } else {
    for (const file of files) reports.push(await inspectFile(file, plan));
  }
  const examples = reports.reduce((s, r) => s + r.examples, 0);
  const positives = reports.reduce((s, r) => s + r.positives, 0);
  const skipped = reports.reduce((s, r) => s + r.skipped, 0);
  const errors = reports.filter((r) => r.error).length;
  const labels = `${plan.label.positive}:${positives},${plan.label.negative}:${examples - positives}`;
  const summary = `examples=${examples} features=${inputWidth(plan)} labels=${labels} skipped=${skipped} errors=${errors}\n`;
  const stdout = reports.map((r) => r.text).join("") + summary;
  if (examples === 0) {
    return { code: 1, stdout, stderr: "fedward inspect: nothing importable in the files given.\n" };
  }
  return { code: 0, stdout, stderr: "" };
}

function parse(argv: string[]): { plan: string; paths: string[]; labels?: string; help: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { plan: { type: "string" }, labels: { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) return { plan: "", paths: [], help: true };
  if (!values.plan) throw new Error("--plan is required: give the federation's plan JSON file.");
  if (positionals.length === 0) throw new Error("give at least one file or directory to inspect.");
  return {
    plan: values.plan,
    paths: positionals,
    help: false,
    ...(values.labels ? { labels: values.labels } : {}),
  };
}

/** A directory's files, recursively and sorted, so the report's order does not depend on the disk. */
function listFiles(path: string): string[] {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    return [path]; // reported as unreadable by inspectFile
  }
  if (!stats.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => listFiles(join(path, name)));
}

async function inspectFile(path: string, plan: Plan): Promise<FileReport> {
  const report: FileReport = { examples: 0, positives: 0, skipped: 0, error: false, text: "" };
  if (!CSV_NAME.test(path)) {
    report.error = true;
    report.text = `${path}: error: not a CSV file (.csv, .tsv or .txt); this plan reads CSV exports.\n`;
    return report;
  }
  const problems: ImportProblem[] = [];
  let problemCount = 0;
  const sink: ExampleSink = {
    add(_x, y) {
      report.examples++;
      report.positives += y;
    },
    problem(p) {
      problemCount++;
      if (problems.length < SHOWN_PROBLEMS) problems.push(p);
    },
  };
  try {
    const text = readFileSync(path, "utf8");
    const stats = await importCsv(text, plan, sink, { fileName: basename(path) });
    report.skipped = stats.rowsSkipped;
    const imputed = Object.values(stats.imputed).reduce((s, n) => s + n, 0);
    report.text =
      `${path}: rows=${stats.rowsRead} examples=${report.examples} skipped=${stats.rowsSkipped} ` +
      `imputed=${imputed} problems=${problemCount}\n` +
      problems.map((p) => `  line ${p.line}, column "${p.column}": ${p.message}\n`).join("") +
      (problemCount > problems.length ? `  … and ${problemCount - problems.length} more problems\n` : "");
  } catch (e) {
    report.error = true;
    report.examples = 0;
    report.positives = 0;
    report.text = `${path}: error: ${(e as Error).message}\n`;
  }
  return report;
}
