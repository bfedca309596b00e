import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { backendAdvice, roundTimeText } from "../../../src/app/backend-advice";
import { modelCardText } from "../../../src/app/model-card";
import { stepStates } from "../../../src/app/steps";
import { etaSeconds } from "../../../src/app/train-progress";
import { type Plan, parsePlan } from "../../../src/core/plan";
import { exactGaussianEpsilon } from "../../../src/core/privacy/accounting";
import { epsilonSpent, formatEpsilon } from "../../../src/core/privacy/budget";
import type { ReleaseRow, RoundRow } from "../../../src/store/db";
import type { BackendChoice } from "../../../workers/train/backends";

const plan = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
const oldPlan = parsePlan(JSON.parse(readFileSync("test/fixtures/plans/wdbc-site-update.json", "utf8")));

/** A dp-sgd ledger row of the demo plan (15 steps at q = 0.5 on 150 rows). */
function release(round: number, extra: Partial<ReleaseRow> = {}): ReleaseRow {
  return {
    federationId: "f",
    round,
    planHash: "ab".repeat(32),
    noiseMultiplier: plan.privacy.noiseMultiplier,
    clipNorm: plan.privacy.clipNorm,
    sigma: plan.privacy.noiseMultiplier * plan.privacy.clipNorm,
    grid: 2 ** -11,
    mechanism: "dp-sgd",
    steps: 15,
    samplingRate: 0.5,
    units: 150,
    delta: plan.privacy.delta,
    epsilonAfter: 1,
    preClipNorm: 3,
    postClipNorm: 1,
    bytes: 100,
    sha256: "cd".repeat(32),
    createdAt: 0,
    ...extra,
  };
}

describe("the model card", () => {
  it("says task, data, sites, rounds, privacy and metrics from the site's own records", () => {
    // Prepare: 2 rounds, round 2 withheld, so only round 1's release is spent
    const rounds: RoundRow[] = [
      {
        federationId: "f",
        round: 1,
        accuracyBefore: 0.4,
        lossBefore: 0.9,
        accuracyAfter: 0.8,
        lossAfter: 0.5,
      },
      {
        federationId: "f",
        round: 2,
        accuracyAfter: 0.925,
        lossAfter: 0.25,
        notSent: "withheld by this site",
      },
    ];
    const spent = epsilonSpent(
      [{ mechanism: "dp-sgd", noiseMultiplier: plan.privacy.noiseMultiplier, samplingRate: 0.5, steps: 15 }],
      plan.privacy.delta,
    );

    // Execute
    const text = modelCardText({
      plan,
      planHash: "ab".repeat(32),
      siteLabel: "Oslo site",
      coordinatorUrl: "https://coordinator.example",
      dataset: {
        fileName: "wdbc-site1.csv",
        numTrain: 150,
        numHoldout: 40,
        positives: 70,
        negatives: 120,
        rowsRead: 191,
        rowsSkipped: 1,
        sources: [{ name: "wdbc-site1.csv", size: 1000, sha256: "ef".repeat(32) }],
      },
      rounds,
      releases: [release(1, { sentAt: 5 }), release(2, { withheldAt: 6 })],
      spent,
      modelVersion: 2,
      generatedAt: new Date("2025-03-04T10:00:00Z"),
    });

    // Assert
    expect(text).toContain(`# Model card: ${plan.title}`);
    expect(text).toContain("Written on 2025-03-04 by fedward at Oslo site");
    expect(text).toContain(`Predict "${plan.label.positive}" vs "${plan.label.negative}"`);
    expect(text).toContain(
      `190 examples from wdbc-site1.csv (SHA-256 ${"ef".repeat(32)}): 150 for training, 40 held out`,
    );
    expect(text).toContain(`${plan.label.positive} 70 (36.8%), ${plan.label.negative} 120 (63.2%)`);
    expect(text).toContain(`at least ${plan.minSites} site(s) per round`);
    expect(text).toContain(`The final model is version 2, after ${plan.rounds} rounds.`);
    expect(text).toContain("This site sent its update in 1 round(s); it withheld round(s) 2 (not sent).");
    expect(text).toContain(`spent ε = ${formatEpsilon(spent)} per row of its budget ε = 3`);
    expect(text).toContain(`clipped to length C = ${plan.privacy.clipNorm}`);
    expect(text).toContain(
      "DP-SGD: at each of 15 steps per round (sampling rate q = 0.5), each row's gradient",
    );
    expect(text).toContain(`σ = z·C = 5.200 (z = 5.2)`);
    expect(text).toContain("is a moderate guarantee");
    expect(text).not.toContain("Site-level noise only");
    expect(text).toContain("Starting model: accuracy 40.0%, loss 0.900.");
    expect(text).toContain("Model version 2: accuracy 92.5%, loss 0.250.");
    expect(text).toContain("| 1 | 80.0% | 0.500 |\n| 2 | 92.5% | 0.250 |");
  });
});

describe("the model card of an old plan", () => {
  it("labels site-update privacy as site-level noise only and calls ε above 10 weak", () => {
    // Prepare: the pre-DP-SGD demo plan, z = 0.02, one release: ε = 2378 at δ = 1e-5
    const spent = exactGaussianEpsilon([oldPlan.privacy.noiseMultiplier], oldPlan.privacy.delta);
    const row = release(1, {
      sentAt: 5,
      noiseMultiplier: 0.02,
      clipNorm: 2,
      sigma: 0.08,
      grid: 2 ** -20,
      mechanism: undefined,
      steps: undefined,
      samplingRate: undefined,
      units: undefined,
    });

    // Execute
    const text = modelCardText({ ...cardInput(oldPlan), releases: [row], spent });

    // Assert
    expect(spent).toBeGreaterThan(10);
    expect(text).toContain("Site-level noise only. Each round's whole update was clipped to length C = 2");
    expect(text).toContain(
      `This site spent ε = ${formatEpsilon(spent)} per site (its whole data set) of its budget ε = 5000`,
    );
    expect(text).toContain(`ε = ${formatEpsilon(spent)} is above 10: the guarantee is weak`);
    expect(text).toContain("does not protect individual rows the way DP-SGD");
    expect(text).not.toContain("is a moderate guarantee");
  });
});

function cardInput(p: Plan) {
  return {
    plan: p,
    planHash: "ab".repeat(32),
    siteLabel: "Oslo site",
    coordinatorUrl: "https://coordinator.example",
    dataset: {
      fileName: "wdbc-site1.csv",
      numTrain: 150,
      numHoldout: 40,
      positives: 70,
      negatives: 120,
      rowsRead: 190,
      rowsSkipped: 0,
    },
    rounds: [],
    modelVersion: undefined,
    generatedAt: new Date("2025-03-04T10:00:00Z"),
  };
}

describe("the clinician's path", () => {
  it("derives every step's state: the current one is the first not done", () => {
    expect(stepStates({ planApproved: false, dataImported: false, training: "idle" })).toEqual([
      "current",
      "to do",
      "to do",
      "to do",
      "to do",
    ]);
    // Data imported before approval: Join stays current (nothing trains before approval).
    expect(stepStates({ planApproved: false, dataImported: true, training: "idle" })).toEqual([
      "current",
      "done",
      "to do",
      "to do",
      "to do",
    ]);
    expect(stepStates({ planApproved: true, dataImported: true, training: "running" })).toEqual([
      "done",
      "done",
      "current",
      "to do",
      "to do",
    ]);
    expect(stepStates({ planApproved: true, dataImported: true, training: "done" })).toEqual([
      "done",
      "done",
      "done",
      "done",
      "current",
    ]);
  });

  it("estimates the round's time left from the measured speed and the batches to go", () => {
    // 3 epochs of 10 batches of 32; after batch 4 of epoch 2, 16 batches (512 examples) are left at 256/s
    const p = { epoch: 2, epochs: 3, batch: 4, batches: 10, loss: 0.5, examplesPerSecond: 256 };
    expect(etaSeconds(p, 32)).toBe(2);
  });

  it("estimates a DP-SGD round's time left from the steps to go and the sampled step's size", () => {
    // step 5 of 15 sampled 80 examples; 10 steps of about 80 examples at 200/s = 4 s
    const p = { epoch: 5, epochs: 15, batch: 1, batches: 1, step: 5, steps: 15, batchExamples: 80 };
    expect(etaSeconds({ ...p, loss: 0.5, examplesPerSecond: 200 }, 0)).toBe(4);
  });

  it("says in plain words that there is no GPU, and about how long a round takes", () => {
    const choice: BackendChoice = {
      backend: "wasm",
      reason: "webgpu skipped (no WebGPU adapter); measured wasm 50 examples/s",
      measurements: [
        { backend: "webgpu", note: "no WebGPU adapter" },
        { backend: "wasm", examplesPerSecond: 50 },
        { backend: "cpu", examplesPerSecond: 20 },
      ],
    };
    // 3000 examples x 4 epochs at 50/s = 240 s
    expect(backendAdvice(choice, 3000 * 4)).toBe(
      "This computer offers no GPU to the browser; training will use WebAssembly, about 4 minutes per round.",
    );
    expect(roundTimeText(30)).toBe("under a minute per round");
    const gpu: BackendChoice = {
      ...choice,
      backend: "webgpu",
      adapter: { fallback: false, description: "x" },
    };
    expect(backendAdvice(gpu, 3000 * 4)).toBe("Training will use the GPU (WebGPU).");
  });
});
