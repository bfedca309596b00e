import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors";
import { type Plan, parsePlan } from "../../../src/core/plan";
import {
  exactGaussianEpsilon,
  INTEGER_RDP_ORDERS,
  rdpPoissonGaussian,
  rdpToEpsilon,
} from "../../../src/core/privacy/accounting";
import {
  checkBudget,
  epsilonSpent,
  planPrivacy,
  type ReleaseCost,
  refusalText,
  roundCost,
} from "../../../src/core/privacy/budget";
import type { ReleaseRow } from "../../../src/store/db";
import { releaseCost } from "../../../src/store/ledger";

type Json = Record<string, unknown>;

function siteUpdatePlanJson(): Json {
  return JSON.parse(readFileSync("test/fixtures/plans/wdbc-site-update.json", "utf8")) as Json;
}

/** The WDBC plan before DP-SGD, with its privacy fields overridden. */
function sitePlan(privacy: Json = {}, rounds = 3): Plan {
  const raw = siteUpdatePlanJson();
  return parsePlan({ ...raw, rounds, privacy: { ...(raw.privacy as Json), ...privacy } });
}

function dpPlan(privacy: Json = {}, rounds = 5): Plan {
  return parsePlan({
    ...siteUpdatePlanJson(),
    rounds,
    training: { optimizer: "sgd", learningRate: 1 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1,
      noiseMultiplier: 1.1,
      delta: 1e-5,
      epsilonBudget: 3,
      stepsPerRound: 16,
      expectedBatchSize: 50,
      ...privacy,
    },
  });
}

/** RDP epsilon the long way: every cost's own rdpPoissonGaussian, summed order by order. */
function rdpByHand(costs: { samplingRate: number; noiseMultiplier: number; steps: number }[], delta: number) {
  const total = INTEGER_RDP_ORDERS.map(() => 0);
  for (const c of costs) {
    rdpPoissonGaussian(c.samplingRate, c.noiseMultiplier, c.steps, INTEGER_RDP_ORDERS).forEach((r, k) => {
      total[k] = (total[k] as number) + r;
    });
  }
  return rdpToEpsilon(INTEGER_RDP_ORDERS, total, delta).epsilon;
}

describe("roundCost", () => {
  it("is the noise multiplier alone for a site-update plan, whatever the site's size", () => {
    expect(roundCost(sitePlan(), 10)).toEqual({ mechanism: "site-update", noiseMultiplier: 0.02 });
    expect(roundCost(sitePlan(), 1000)).toEqual(roundCost(sitePlan(), 10));
  });

  it("is q = B / N and the steps per round for a dp-sgd plan at this site", () => {
    expect(roundCost(dpPlan(), 200)).toEqual({
      mechanism: "dp-sgd",
      noiseMultiplier: 1.1,
      samplingRate: 0.25,
      steps: 16,
    });
  });

  it("refuses a site whose units cannot fill the expected batch, naming the field", () => {
    expect(() => roundCost(dpPlan(), 49)).toThrow(InputError);
    expect(() => roundCost(dpPlan(), 49)).toThrow(/privacy\.expectedBatchSize/);
  });
});

describe("epsilonSpent", () => {
  it("is 0 for no releases", () => {
    expect(epsilonSpent([], 1e-5)).toBe(0);
  });

  it("is the exact GDP epsilon for site-update releases, as before DP-SGD", () => {
    // Prepare
    const costs: ReleaseCost[] = [0.8, 1.5, 2].map((z) => ({ mechanism: "site-update", noiseMultiplier: z }));

    // Execute and Assert
    expect(epsilonSpent(costs, 1e-5)).toBe(exactGaussianEpsilon([0.8, 1.5, 2], 1e-5));
  });

  it("is rdpToEpsilon over the summed rdpPoissonGaussian at the integer orders for dp-sgd releases", () => {
    // Prepare: two sites' sizes over time (q changes when a site re-imports), z != 1
    const raw = [
      { samplingRate: 0.25, noiseMultiplier: 1.3, steps: 16 },
      { samplingRate: 0.25, noiseMultiplier: 1.3, steps: 16 },
      { samplingRate: 0.2, noiseMultiplier: 1.3, steps: 16 },
      { samplingRate: 0.25, noiseMultiplier: 1.3, steps: 8 },
    ];
    const costs: ReleaseCost[] = raw.map((c) => ({ mechanism: "dp-sgd", ...c }));

    // Execute
    const epsilon = epsilonSpent(costs, 1e-5);

    // Assert
    expect(epsilon).toBeGreaterThan(0.5);
    expect(Math.abs(epsilon - rdpByHand(raw, 1e-5))).toBeLessThan(1e-12 * epsilon);
  });

  it("uses integer orders only: the same as dp_accounting would give over those orders", () => {
    // Prepare
    const orders = INTEGER_RDP_ORDERS;

    // Assert
    expect(orders.every((a) => Number.isInteger(a) && a >= 2)).toBe(true);
    expect(orders.slice(0, 63)).toEqual(Array.from({ length: 63 }, (_, i) => i + 2));
    expect([...orders]).toEqual([...orders].sort((a, b) => a - b));
  });

  it("throws on a list that mixes the two mechanisms", () => {
    const costs: ReleaseCost[] = [
      { mechanism: "site-update", noiseMultiplier: 1 },
      { mechanism: "dp-sgd", noiseMultiplier: 1, samplingRate: 0.1, steps: 10 },
    ];
    expect(() => epsilonSpent(costs, 1e-5)).toThrow(/mixes site-update and dp-sgd/);
  });
});

describe("checkBudget", () => {
  it("adds this round's cost to the past ones and allows it within the budget", () => {
    // Prepare
    const plan = dpPlan();
    const past = [roundCost(plan, 200), roundCost(plan, 200)];

    // Execute
    const check = checkBudget(plan, 200, past);

    // Assert
    expect(check.spent).toBe(epsilonSpent(past, 1e-5));
    expect(check.after).toBe(epsilonSpent([...past, roundCost(plan, 200)], 1e-5));
    expect(check.after).toBeGreaterThan(check.spent);
    expect(check).toMatchObject({ budget: 3, delta: 1e-5, allowed: check.after <= 3 });
  });

  it("refuses a round that would go over, in words that keep working", () => {
    // Prepare
    const plan = sitePlan({ noiseMultiplier: 1, epsilonBudget: 5 });
    const past: ReleaseCost[] = [{ mechanism: "site-update", noiseMultiplier: 1 }];

    // Execute
    const check = checkBudget(plan, 10, past);

    // Assert
    expect(check.allowed).toBe(false);
    expect(check.after).toBe(exactGaussianEpsilon([1, 1], 1e-5));
    expect(refusalText(check, 2)).toMatch(
      /round 2: its privacy budget would run out.*ε = 5\.000 \(δ = 0\.00001\)/,
    );
  });
});

describe("planPrivacy", () => {
  it("gives epsilon after each round of a dp-sgd plan, bit for bit what the ledger's epsilonSpent gives", () => {
    // Prepare
    const plan = dpPlan({ epsilonBudget: 10 }, 8);

    // Execute
    const { epsilonPerRound, epsilonAllRounds, roundsWithinBudget } = planPrivacy(plan, 200);

    // Assert
    expect(epsilonPerRound).toHaveLength(8);
    epsilonPerRound.forEach((e, i) => {
      expect(e).toBe(epsilonSpent(new Array<ReleaseCost>(i + 1).fill(roundCost(plan, 200)), 1e-5));
      if (i > 0) expect(e).toBeGreaterThan(epsilonPerRound[i - 1] as number);
    });
    expect(epsilonAllRounds).toBe(epsilonPerRound[7]);
    expect(roundsWithinBudget).toBe(epsilonPerRound.filter((e) => e <= 10).length);
    expect(roundsWithinBudget).toBeGreaterThan(0);
    expect(roundsWithinBudget).toBeLessThan(8);
  });

  it("depends on the site's size through q = B / N: a larger site spends less", () => {
    expect(planPrivacy(dpPlan(), 1000).epsilonAllRounds).toBeLessThan(
      planPrivacy(dpPlan(), 200).epsilonAllRounds,
    );
  });

  it("keeps a site-update plan's numbers as before DP-SGD", () => {
    // Prepare
    const plan = sitePlan({ noiseMultiplier: 2, epsilonBudget: 3 }, 6);

    // Execute
    const { epsilonPerRound, epsilonAllRounds, roundsWithinBudget } = planPrivacy(plan, 1);

    // Assert
    expect(epsilonAllRounds).toBe(exactGaussianEpsilon(new Array<number>(6).fill(2), 1e-5));
    epsilonPerRound.forEach((e, i) => {
      expect(e).toBe(exactGaussianEpsilon(new Array<number>(i + 1).fill(2), 1e-5));
    });
    expect(roundsWithinBudget).toBe(epsilonPerRound.filter((e) => e <= 3).length);
  });

  it("refuses a site too small for the plan's expected batch", () => {
    expect(() => planPrivacy(dpPlan(), 10)).toThrow(/privacy\.expectedBatchSize is 50, more than the 10/);
  });
});

describe("releaseCost of a ledger row", () => {
  const row = (extra: Partial<ReleaseRow>): ReleaseRow => ({
    federationId: "f",
    round: 3,
    planHash: "h",
    noiseMultiplier: 1.3,
    clipNorm: 1,
    sigma: 1.3,
    grid: 2 ** -11,
    delta: 1e-5,
    epsilonAfter: 1,
    preClipNorm: 1,
    postClipNorm: 1,
    bytes: 0,
    sha256: "",
    createdAt: 0,
    ...extra,
  });

  it("maps a dp-sgd row to its q, z and steps, and an old row to site-update", () => {
    expect(releaseCost(row({ mechanism: "dp-sgd", samplingRate: 0.2, steps: 12, units: 100 }))).toEqual({
      mechanism: "dp-sgd",
      noiseMultiplier: 1.3,
      samplingRate: 0.2,
      steps: 12,
    });
    expect(releaseCost(row({}))).toEqual({ mechanism: "site-update", noiseMultiplier: 1.3 });
  });

  it("throws on a dp-sgd row without its steps", () => {
    expect(() => releaseCost(row({ mechanism: "dp-sgd", samplingRate: 0.2 }))).toThrow(/round 3.*bug/);
  });
});
