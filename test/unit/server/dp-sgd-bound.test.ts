import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOptimizer } from "../../../src/core/optim";
import type { Plan } from "../../../src/core/plan";
import {
  dpSgdGrid,
  dpSgdSchedule,
  maxDpSgdDeltaNorm,
  noiseClippedSum,
} from "../../../src/core/privacy/dp-sgd";
import { maxReleasedNorm } from "../../../src/core/privacy/mechanism";
import { poissonSample } from "../../../src/core/privacy/poisson";
import type { EnrollResponse } from "../../../src/core/protocol";
import { CryptoRandom } from "../../../src/core/random";
import { l2Norm } from "../../../src/core/vector";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import { seededFill } from "../core/support";
import {
  closeTestApp,
  federationWithSites,
  openTestApp,
  TEST_PARAMS,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

/** The test plan as DP-SGD: 20 steps of lr 1, clip 1, z 0.5, expected batch 10. */
function dpSgdTestPlan(): Plan {
  return testPlan({
    training: { optimizer: "sgd", learningRate: 1 },
    privacy: {
      mechanism: "dp-sgd",
      clipNorm: 1,
      noiseMultiplier: 0.5,
      delta: 1e-5,
      epsilonBudget: 100,
      stepsPerRound: 20,
      expectedBatchSize: 10,
    },
  });
}

/** A round as an honest site runs it (core code), every unit's gradient at the clip in one direction. */
function honestDelta(plan: Plan, units: number): Float32Array {
  const rng = new CryptoRandom(seededFill(17));
  const noise = { clipNorm: plan.privacy.clipNorm, noiseMultiplier: plan.privacy.noiseMultiplier };
  const { effectiveClip } = dpSgdGrid(noise, TEST_PARAMS);
  const { samplingRate, expectedBatch, steps } = dpSgdSchedule(plan, units);
  const optimizer = createOptimizer(plan.training, TEST_PARAMS);
  const weights = new Float32Array(TEST_PARAMS);
  for (let t = 0; t < steps; t++) {
    const m = poissonSample(units, samplingRate, rng).length;
    const sum = new Float32Array(TEST_PARAMS).fill((m * effectiveClip) / Math.sqrt(TEST_PARAMS));
    const { noised } = noiseClippedSum(sum, noise, rng);
    optimizer.step(
      weights,
      noised.map((x) => x / expectedBatch),
    );
  }
  return weights;
}

/** A vector of the given L2 norm along the first axis. */
function ofNorm(norm: number): Float32Array {
  const v = new Float32Array(TEST_PARAMS);
  v[0] = norm;
  return v;
}

describe("coordinator: the bound on a DP-SGD plan's update norms", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let a: EnrollResponse;
  let b: EnrollResponse;
  const plan = dpSgdTestPlan();
  const bound = maxDpSgdDeltaNorm(plan, TEST_PARAMS);

  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    [a, b] = (await federationWithSites(app, storage, plan)).sites as [EnrollResponse, EnrollResponse];
  });
  afterAll(() => closeTestApp({ app, db }));

  it("accepts an honest round's delta, and one just under the DP-SGD bound though above the site-update one", async () => {
    // Prepare
    const honest = honestDelta(plan, 40);
    const siteUpdateBound = maxReleasedNorm(plan.privacy, TEST_PARAMS);
    const between = ofNorm(bound * 0.999);

    // Execute
    const first = await upload(app, a, 1, updateBody(1, honest));
    const second = await upload(app, b, 1, updateBody(1, between));

    // Assert
    expect(l2Norm(honest)).toBeGreaterThan(1);
    expect(bound).toBeGreaterThan(siteUpdateBound);
    expect(l2Norm(between)).toBeGreaterThan(siteUpdateBound);
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
  });

  it("refuses an update above the bound, and a huge one, saying it was not clipped", async () => {
    // Execute
    const over = await upload(app, a, 2, updateBody(2, ofNorm(bound * 1.001)));
    const huge = await upload(app, a, 2, updateBody(2, ofNorm(3.4e38)));

    // Assert
    for (const response of [over, huge]) {
      expect(response.statusCode).toBe(400);
      expect(response.json<{ message: string }>().message).toMatch(
        /L2 norm is .* the most an honest DP-SGD round of this plan can reach \(20 steps of gradients clipped to 1.*not clipped/,
      );
    }
  });
});
