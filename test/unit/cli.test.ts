import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
// ".js", which resolves to fedward.ts: without an extension Vite would pick the bin shim fedward.mjs first.
import { runFedwardCli } from "../../src/cli/fedward.js";
import { formatNumber, runPrivacyCli } from "../../src/cli/privacy";
import { parsePlan } from "../../src/core/plan";
import {
  exactGaussianEpsilon,
  noiseMultiplierForEpsilon,
  rdpEpsilon,
} from "../../src/core/privacy/accounting";
import { planPrivacy } from "../../src/core/privacy/budget";

const base = ["--rounds", "1", "--delta", "1e-5"];

/** key=value lines as a map of numbers. */
function values(stdout: string): Record<string, number> {
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((line) => {
        const [key, value] = line.split("=");
        return [key, Number(value)];
      }),
  );
}

describe("fedward privacy with --noise-multiplier", () => {
  it("prints the exact and the RDP epsilon without sampling", () => {
    const result = runPrivacyCli(["--noise-multiplier", "1", ...base]);
    expect(result).toEqual({
      code: 0,
      stdout: "epsilon_exact=4.377178096\nepsilon_rdp=4.728507067\n",
      stderr: "",
    });
  });

  it("counts rounds times steps per round as releases", () => {
    const perRound = runPrivacyCli([
      "--noise-multiplier",
      "10",
      "--rounds",
      "20",
      "--steps-per-round",
      "5",
      "--delta",
      "1e-5",
    ]);
    const flat = runPrivacyCli(["--noise-multiplier", "10", "--rounds", "100", "--delta", "1e-5"]);
    expect(perRound.stdout).toBe(flat.stdout);
    // 100 releases at z = 10 are one at z = 1.
    expect(values(flat.stdout).epsilon_exact).toBeCloseTo(4.377178096, 8);
  });

  it("prints only the RDP epsilon under Poisson sampling", () => {
    const result = runPrivacyCli([
      "--noise-multiplier",
      "1.5",
      "--rounds",
      "90",
      "--steps-per-round",
      "25",
      "--delta",
      "1e-5",
      "--sampling-rate",
      "0.04",
    ]);
    const want = rdpEpsilon({ samplingRate: 0.04, noiseMultiplier: 1.5, steps: 2250, delta: 1e-5 });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`epsilon_rdp=${formatNumber(want)}\n`);
  });

  it("treats --sampling-rate 1 as no sampling", () => {
    const result = runPrivacyCli(["--noise-multiplier", "1", ...base, "--sampling-rate", "1"]);
    expect(Object.keys(values(result.stdout))).toEqual(["epsilon_exact", "epsilon_rdp"]);
  });
});

describe("fedward privacy with --target-epsilon", () => {
  it("prints the smallest exact noise multiplier without sampling", () => {
    const result = runPrivacyCli(["--target-epsilon", "1", "--rounds", "100", "--delta", "1e-5"]);
    const z = values(result.stdout).noise_multiplier as number;
    expect(result.code).toBe(0);
    expect(z).toBe(noiseMultiplierForEpsilon({ targetEpsilon: 1, steps: 100, delta: 1e-5 }));
    expect(exactGaussianEpsilon(new Array<number>(100).fill(z), 1e-5)).toBeLessThanOrEqual(1);
  });

  it("calibrates by RDP under sampling", () => {
    const argv = ["--target-epsilon", "8", "--rounds", "2250", "--delta", "1e-5", "--sampling-rate", "0.04"];
    const z = values(runPrivacyCli(argv).stdout).noise_multiplier as number;
    expect(
      rdpEpsilon({ samplingRate: 0.04, noiseMultiplier: z, steps: 2250, delta: 1e-5 }),
    ).toBeLessThanOrEqual(8);
    expect(z).toBeCloseTo(1.415874, 6);
  });
});

describe("fedward privacy usage errors", () => {
  const bad: [string, string[], RegExp][] = [
    ["missing --rounds", ["--noise-multiplier", "1", "--delta", "1e-5"], /--rounds is required/],
    ["missing --delta", ["--noise-multiplier", "1", "--rounds", "3"], /--delta is required/],
    ["neither z nor target", base, /exactly one of --noise-multiplier/],
    ["both z and target", ["--noise-multiplier", "1", "--target-epsilon", "2", ...base], /exactly one/],
    ["z = 0", ["--noise-multiplier", "0", ...base], /--noise-multiplier must be a number above 0.*got "0"/],
    ["z not a number", ["--noise-multiplier", "lots", ...base], /--noise-multiplier must be/],
    [
      "delta = 1",
      ["--noise-multiplier", "1", "--rounds", "1", "--delta", "1"],
      /--delta must be a number between 0 and 1/,
    ],
    [
      "fractional rounds",
      ["--noise-multiplier", "1", "--rounds", "2.5", "--delta", "1e-5"],
      /--rounds must be a whole/,
    ],
    [
      "steps per round 0",
      ["--noise-multiplier", "1", ...base, "--steps-per-round", "0"],
      /--steps-per-round must be/,
    ],
    [
      "sampling rate 0",
      ["--noise-multiplier", "1", ...base, "--sampling-rate", "0"],
      /--sampling-rate must be/,
    ],
    ["empty delta", ["--noise-multiplier", "1", "--rounds", "1", "--delta="], /--delta must be/],
    ["unknown flag", ["--noise", "1", ...base], /Unknown option '--noise'/],
    ["flag without value", ["--noise-multiplier", "1", "--rounds", "1", "--delta"], /--delta/],
    ["positional", ["1", ...base], /positional/],
  ];

  it.each(bad)("rejects %s with exit code 2 and a message naming the flag", (_, argv, message) => {
    const result = runPrivacyCli(argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/fedward privacy --help/);
  });

  it("prints its usage on --help", () => {
    const result = runPrivacyCli(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/--target-epsilon E/);
  });
});

describe("fedward", () => {
  it("dispatches privacy", async () => {
    expect(await runFedwardCli(["privacy", "--noise-multiplier", "1", ...base])).toEqual(
      runPrivacyCli(["--noise-multiplier", "1", ...base]),
    );
  });

  it("prints usage on --help (exit 0) and without a command (exit 2)", async () => {
    expect(await runFedwardCli(["--help"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/Commands:/),
    });
    expect(await runFedwardCli([])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: expect.stringMatching(/Usage:/),
    });
  });

  it("rejects an unknown command with exit code 2", async () => {
    const result = await runFedwardCli(["budget"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command "budget"/);
    expect((await runFedwardCli(["toString"])).code).toBe(2);
  });

  it("runs as a real process through the bin shim", () => {
    const stdout = execFileSync(
      process.execPath,
      [
        fileURLToPath(new URL("../../src/cli/fedward.mjs", import.meta.url)),
        "privacy",
        "--noise-multiplier",
        "1",
        "--rounds",
        "1",
        "--delta",
        "1e-5",
      ],
      { encoding: "utf8" },
    );
    expect(stdout).toMatch(/^epsilon_exact=4\.377\d*\nepsilon_rdp=4\.728\d*\n$/);
  });
});

describe("fedward privacy --plan", () => {
  type Json = Record<string, unknown>;
  const dir = mkdtempSync(join(tmpdir(), "fedward-privacy-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const sitePlanFile = "test/fixtures/plans/wdbc-site-update.json";
  const siteJson = () => JSON.parse(readFileSync(sitePlanFile, "utf8")) as Json;

  /** The WDBC plan as DP-SGD (z = 1.3, 12 steps a round, expected batch 40, 4 rounds), written to a file. */
  function dpSgdJson(extra: Json = {}, privacy: Json = {}): Json {
    return {
      ...siteJson(),
      rounds: 4,
      training: { optimizer: "sgd", learningRate: 1 },
      privacy: {
        mechanism: "dp-sgd",
        clipNorm: 1,
        noiseMultiplier: 1.3,
        delta: 1e-5,
        epsilonBudget: 10,
        stepsPerRound: 12,
        expectedBatchSize: 40,
        ...privacy,
      },
      ...extra,
    };
  }
  let written = 0;
  function planFile(json: unknown): string {
    const file = join(dir, `plan-${written++}.json`);
    writeFileSync(file, typeof json === "string" ? json : JSON.stringify(json));
    return file;
  }

  /** The value after `key=` on the line that starts with it. */
  function field(stdout: string, key: string): string | undefined {
    const line = stdout.split("\n").find((l) => l.startsWith(`${key}=`));
    return line?.slice(key.length + 1);
  }

  it("prints a dp-sgd plan's epsilon per round and for the whole plan, equal to planPrivacy's at that N", () => {
    // Prepare
    const json = dpSgdJson();
    const file = planFile(json);
    const expected = planPrivacy(parsePlan(json), 160);

    // Execute
    const result = runPrivacyCli(["--plan", file, "--examples", "160"]);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        "mechanism=dp-sgd",
        "unit=row adjacency=add-remove-one delta=1e-05",
        ...expected.epsilonPerRound.map((e, i) => `round=${i + 1} epsilon=${formatNumber(e)}`),
        `epsilon=${formatNumber(expected.epsilonAllRounds)}`,
        "",
      ].join("\n"),
    );
    expect(Number(field(result.stdout, "epsilon"))).toBeCloseTo(expected.epsilonAllRounds, 8);
    expect(expected.epsilonAllRounds).toBeGreaterThan(1);
  });

  it("says the unit is the patient when the plan groups CSV rows by a patient column", () => {
    const file = planFile(dpSgdJson({ csv: { patientColumn: "patient" } }));
    const result = runPrivacyCli(["--plan", file, "--examples", "100"]);
    expect(result.stdout).toMatch(/^mechanism=dp-sgd\nunit=patient adjacency=add-remove-one delta=1e-05\n/);
  });

  it("prints the smallest noise multiplier meeting --target-epsilon over the whole plan at that N", () => {
    // Prepare
    const json = dpSgdJson();
    const file = planFile(json);
    const epsilonWith = (z: number) =>
      planPrivacy(parsePlan({ ...json, privacy: { ...(json.privacy as Json), noiseMultiplier: z } }), 160)
        .epsilonAllRounds;

    // Execute
    const result = runPrivacyCli(["--plan", file, "--examples", "160", "--target-epsilon", "3"]);

    // Assert
    expect(result.code).toBe(0);
    const z = Number(field(result.stdout, "noise_multiplier"));
    expect(epsilonWith(z)).toBeLessThanOrEqual(3);
    expect(epsilonWith(z * (1 - 1e-5))).toBeGreaterThan(3);
    expect(z).toBeGreaterThan(1.3);
  });

  it("prints a site-update plan's exact epsilon and says so, with no --examples needed", () => {
    // Prepare
    const plan = parsePlan(siteJson());

    // Execute
    const result = runPrivacyCli(["--plan", sitePlanFile]);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^mechanism=site-update\nunit=site adjacency=replace-one delta=1e-05\n/);
    const epsilon = exactGaussianEpsilon(
      new Array<number>(plan.rounds).fill(plan.privacy.noiseMultiplier),
      1e-5,
    );
    expect(field(result.stdout, "epsilon")).toBe(formatNumber(epsilon));
    expect(result.stdout.match(/^round=/gm)).toHaveLength(plan.rounds);
  });

  it.each<[string, () => string[], RegExp]>([
    [
      "a flag the plan fixes",
      () => ["--plan", sitePlanFile, "--rounds", "3"],
      /--rounds cannot be given with --plan/,
    ],
    ["no --examples for a dp-sgd plan", () => ["--plan", planFile(dpSgdJson())], /--examples is required/],
    ["--examples without --plan", () => ["--examples", "10"], /--examples goes with --plan/],
    [
      "--examples 0",
      () => ["--plan", planFile(dpSgdJson()), "--examples", "0"],
      /--examples must be a whole/,
    ],
    ["a fractional --examples", () => ["--plan", sitePlanFile, "--examples", "2.5"], /--examples must be/],
    ["--plan without a file", () => ["--plan"], /--plan/],
  ])("refuses %s with exit code 2", (_what, argv, message) => {
    const result = runPrivacyCli(argv());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/fedward privacy --help/);
  });

  it.each<[string, () => string[], RegExp]>([
    [
      "a missing file",
      () => ["--plan", join(dir, "nope.json"), "--examples", "9"],
      /cannot read the plan file/,
    ],
    ["a file that is not JSON", () => ["--plan", planFile("{ nope"), "--examples", "9"], /is not JSON/],
    [
      "an invalid plan",
      () => ["--plan", planFile(dpSgdJson({}, { stepsPerRound: undefined })), "--examples", "9"],
      /privacy\.stepsPerRound: is required/,
    ],
    [
      "a site smaller than the expected batch",
      () => ["--plan", planFile(dpSgdJson()), "--examples", "39"],
      /privacy\.expectedBatchSize is 40, more than the 39 training rows/,
    ],
  ])("refuses %s with exit code 1 and says why", (_what, argv, message) => {
    const result = runPrivacyCli(argv());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message);
  });

  it("documents --plan in its usage", () => {
    expect(runPrivacyCli(["--help"]).stdout).toMatch(/--plan PLAN\.json --examples N \[--target-epsilon E\]/);
  });
});
