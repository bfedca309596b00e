import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { privacyText, trainingText } from "../../../src/app/plan-view";
import { meterBounds, spentText } from "../../../src/app/privacy-view";
import { strength, strengthText } from "../../../src/app/privacy-words";
import { budgetText, doneText, sitesEpsilonText } from "../../../src/app/simulation/sim-text";
import { type Plan, parsePlan } from "../../../src/core/plan";
import { formatEpsilon, planPrivacy } from "../../../src/core/privacy/budget";

const load = (path: string) => parsePlan(JSON.parse(readFileSync(path, "utf8")));
const wdbc = load("public/demo/wdbc-plan.json");
const synthea = load("public/demo/synthea-hypertension-plan.json");
const digits = load("public/demo/digits-plan.json");
const oldWdbc = load("test/fixtures/plans/wdbc-site-update.json");

/** The demo plan with an expected batch B instead of a fixed sampling rate (then q = B / N per site). */
function withBatch(plan: Plan, batch: number): Plan {
  const { samplingRate: _, ...rest } = plan.privacy;
  return parsePlan({ ...plan, privacy: { ...rest, expectedBatchSize: batch } });
}

describe("the demo plans' privacy", () => {
  it("are DP-SGD at ε ≤ 3 (WDBC, Synthea) and ≤ 8 (digits) per unit for the whole plan, within budget", () => {
    for (const [plan, most] of [
      [wdbc, 3],
      [synthea, 3],
      [digits, 8],
    ] as const) {
      const { epsilonAllRounds, roundsWithinBudget } = planPrivacy(plan, 152);
      expect(plan.privacy.mechanism).toBe("dp-sgd");
      expect(epsilonAllRounds).toBeLessThanOrEqual(most);
      expect(epsilonAllRounds).toBeGreaterThan(most * 0.9); // the budget is not loose either
      expect(plan.privacy.epsilonBudget).toBe(most);
      expect(roundsWithinBudget).toBe(plan.rounds);
    }
  });
});

describe("the plan view's guarantee", () => {
  it("states the DP-SGD mechanism, the unit, the adjacency, what is covered and ε for the whole plan", () => {
    // Execute
    const g = privacyText(wdbc, 152);

    // Assert
    const { epsilonAllRounds } = planPrivacy(wdbc, 152);
    expect(g.epsilon).toBe(epsilonAllRounds);
    expect(g.refused).toBeUndefined();
    expect(g.text).toContain(
      "Per row (DP-SGD): at every step, each row's gradient is clipped to length C = 1",
    );
    expect(g.text).toContain("σ = z·C = 5.200 (noise multiplier z = 5.2)");
    expect(g.text).toContain("with and without any one row (add/remove one)");
    expect(g.text).toContain("twice as far (2C)");
    expect(g.text).toContain("everything this site uploads to the coordinator for the whole plan");
    expect(g.text).toContain(
      `all 3 rounds of 15 steps together spend at most ε = ${formatEpsilon(epsilonAllRounds)} per row`,
    );
    expect(g.text).toContain("at this site (152 training rows)");
    expect(g.text).toContain("within this site's budget of ε = 3");
    expect(g.text).toContain(
      "It does not cover the plan itself, or whether and in how many rounds this site takes part.",
    );
    expect(g.text).not.toContain("held-out metrics");
    expect(trainingText(wdbc)).toContain("each round 15 steps of DP-SGD");
    expect(trainingText(wdbc)).toContain("probability q = 0.5");
  });

  it("names the unit of each demo plan: patient, row, image", () => {
    expect(privacyText(synthea, 132).text).toContain("Per patient (DP-SGD)");
    expect(privacyText(wdbc, 152).text).toContain("ε = 2.989 per row");
    expect(privacyText(digits, 95).text).toContain("Per image (DP-SGD)");
    expect(trainingText(digits)).toContain("SGD with momentum 0.9 at learning rate 0.05");
  });

  it("shows a fixed sampling rate's ε before import, the same as at any N", () => {
    const before = privacyText(wdbc, undefined);
    expect(before.epsilon).toBe(privacyText(wdbc, 152).epsilon);
    expect(before.epsilon).toBe(privacyText(wdbc, 1000).epsilon);
    expect(before.text).toContain(
      "the same for any number of training rows: the sampling rate q = 0.5 is fixed",
    );
  });

  it("says that an expected batch makes ε depend on N, and shows it for this site's N", () => {
    // Prepare
    const plan = withBatch(wdbc, 32);

    // Execute
    const before = privacyText(plan, undefined);
    const at100 = privacyText(plan, 100);

    // Assert
    expect(before.epsilon).toBeUndefined();
    expect(before.text).toContain("so ε depends on N: it is shown here once this site's data is imported");
    expect(at100.epsilon).toBe(planPrivacy(plan, 100).epsilonAllRounds);
    expect(at100.text).toContain("at this site (100 training rows, q = 32/100 = 0.320)");
    expect(at100.epsilon).not.toBe(privacyText(plan, 300).epsilon);
  });

  it("gives the refusal reason when the expected batch does not fit this site", () => {
    const big = privacyText(withBatch(wdbc, 32), 10);
    expect(big.epsilon).toBeUndefined();
    expect(big.refused).toContain("privacy.expectedBatchSize is 32, more than the 10 training rows");
    expect(big.text).toContain(big.refused as string);
    const rare = privacyText(parsePlan({ ...wdbc, privacy: { ...wdbc.privacy, samplingRate: 0.01 } }), 50);
    expect(rare.refused).toContain("expected batch of 0.500 of the 50 training rows at this site, below 1");
  });

  it("mentions the unnoised metrics when the plan reports them", () => {
    const plan = parsePlan({ ...wdbc, evaluation: { ...wdbc.evaluation, reportMetrics: true } });
    expect(privacyText(plan, 152).text).toContain("It does not cover the held-out metrics this site reports");
  });

  it("shows an old plan as site-level noise only, with its ε, a warning and a weak guarantee", () => {
    const g = privacyText(oldWdbc, 152);
    expect(g.text.startsWith("Site-level noise only:")).toBe(true);
    expect(g.text).toContain("It does not protect individual rows the way DP-SGD");
    expect(g.text).toContain("Per site (its whole data set)");
    expect(g.text).toContain("All 3 rounds together spend at most ε = 4118");
    expect(g.text).toContain("ε = 4118 is above 10: the guarantee is weak");
  });
});

describe("how strong ε is", () => {
  it("is strong up to 1, moderate up to 10 and weak above 10", () => {
    expect(strength(0.5)).toBe("strong");
    expect(strength(1)).toBe("strong");
    expect(strength(3)).toBe("moderate");
    expect(strength(10)).toBe("moderate");
    expect(strength(10.01)).toBe("weak");
    expect(strengthText(10.5, synthea)).toBe(
      "ε = 10.50 is above 10: the guarantee is weak, and says little about what the uploads could reveal about one patient.",
    );
    expect(strengthText(2.989, wdbc)).toContain("is a moderate guarantee");
  });

  it("keeps the meter green only up to ε = 10, whatever the budget", () => {
    // A <meter> with optimum below low is green up to low and red above high.
    expect(meterBounds(5000)).toEqual({ low: 10, high: 10, optimum: 0 });
    expect(meterBounds(3)).toEqual({ low: 3, high: 3, optimum: 0 });
  });

  it("says the unit and the strength next to the ε spent, and labels an old plan", () => {
    expect(spentText(wdbc, 2.4, 2, 0)).toBe(
      "Privacy spent: ε = 2.400 per row of the budget ε = 3.000 (δ = 0.00001), by 2 releases from this site. " +
        "ε = 2.400 is a moderate guarantee (smaller ε is more private; at most 1 is strong, above 10 weak).",
    );
    expect(spentText(digits, 0, 0, 0)).toContain("ε = 0 per image");
    const old = spentText(oldWdbc, 2800.6, 2, 1);
    expect(
      old.startsWith("Site-level noise only. Privacy spent: ε = 2801 per site (its whole data set)"),
    ).toBe(true);
    expect(old).toContain("1 withheld round never left and counts nothing.");
    expect(old).toContain("ε = 2801 is above 10: the guarantee is weak");
  });
});

describe("the simulation's privacy sentences", () => {
  const last = {
    round: 3,
    federated: 0.95,
    pooled: 0.97,
    alone: [0.9, 0.92, 0.91],
    epsilon: 2.989,
    epsilonBySite: [2.989, 2.989, 2.989],
    epsilonPooled: 2.989,
  };

  it("says when the rounds asked for do not fit the budget, and that the run stopped for it", () => {
    expect(budgetText(wdbc, 5, 3)).toBe(
      "You asked for 5 rounds, but the plan's privacy budget (ε = 3.000 per row at δ = 0.00001) covers only " +
        "3 rounds at a hospital: the simulation stops after round 3, as a real site refuses to take part in more.",
    );
    expect(doneText(wdbc, last, 5, true)).toContain(
      "Stopped by the privacy budget after 3 rounds of the 5 asked for",
    );
    expect(doneText(wdbc, last, 3, false)).toContain("Done after 3 rounds");
    expect(doneText(wdbc, last, 3, false)).toContain("each hospital spent ε = 2.989 per row at δ = 0.00001.");
  });

  it("shows each hospital's own ε, once when they agree", () => {
    expect(sitesEpsilonText([2.989, 2.989])).toBe("2.989");
    expect(sitesEpsilonText([2.5, 3])).toBe("2.500 / 3.000");
  });

  it("labels an old plan's run as site-level noise only and weak", () => {
    const text = doneText(oldWdbc, { ...last, epsilon: 4118 }, 3, false);
    expect(text).toContain("ε = 4118 per site (its whole data set) at δ = 0.00001 (site-level noise only)");
    expect(text).toContain("the guarantee is weak");
  });
});
