import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { backendAdvice, roundTimeText } from "../../../src/app/backend-advice";
import { modelCardText } from "../../../src/app/model-card";
import { stepStates } from "../../../src/app/steps";
import { etaSeconds } from "../../../src/app/train-progress";
import { parsePlan } from "../../../src/core/plan";
import { exactGaussianEpsilon } from "../../../src/core/privacy/accounting";
import type { ReleaseRow, RoundRow } from "../../../src/store/db";
import type { BackendChoice } from "../../../workers/train/backends";

const plan = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));

function release(round: number, extra: Partial<ReleaseRow> = {}): ReleaseRow {
  return {
    federationId: "f",
    round,
    planHash: "ab".repeat(32),
    noiseMultiplier: plan.privacy.noiseMultiplier,
    clipNorm: plan.privacy.clipNorm,
    sigma: 0.04,
    grid: 2 ** -20,
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
    const spent = exactGaussianEpsilon([plan.privacy.noiseMultiplier], plan.privacy.delta);

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
    expect(text).toContain(`spent ε = ${spent.toFixed(0)} of its budget`);
    expect(text).toContain(`C = ${plan.privacy.clipNorm}`);
    expect(text).toContain("Starting model: accuracy 40.0%, loss 0.900.");
    expect(text).toContain("Model version 2: accuracy 92.5%, loss 0.250.");
    expect(text).toContain("| 1 | 80.0% | 0.500 |\n| 2 | 92.5% | 0.250 |");
  });
});

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
    expect(backendAdvice(choice, 3000, 4)).toBe(
      "This computer offers no GPU to the browser; training will use WebAssembly, about 4 minutes per round.",
    );
    expect(roundTimeText(30)).toBe("under a minute per round");
    const gpu: BackendChoice = {
      ...choice,
      backend: "webgpu",
      adapter: { fallback: false, description: "x" },
    };
    expect(backendAdvice(gpu, 3000, 4)).toBe("Training will use the GPU (WebGPU).");
  });
});
