import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiPaths, type EnrollResponse, type FederationState } from "../../../src/core/protocol";
import { decodeVector, WireKind } from "../../../src/core/wire";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import { bytesToVector } from "../../../src/server/vector-bytes";
import {
  bearer,
  closeTestApp,
  federationWithSites,
  fetchFinalModel,
  knownDelta,
  openTestApp,
  TEST_PARAMS,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

describe("coordinator app: rounds", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
  });
  afterAll(() => closeTestApp({ app, db }));

  async function state(site: EnrollResponse): Promise<FederationState> {
    const response = await app.inject({
      url: apiPaths.state(site.federationId),
      headers: bearer(site.token),
    });
    expect(response.statusCode).toBe(200);
    return response.json<FederationState>();
  }

  async function downloadModel(site: EnrollResponse, version: number) {
    const response = await app.inject({
      url: apiPaths.model(site.federationId, version),
      headers: bearer(site.token),
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/octet-stream");
    return decodeVector(response.rawPayload, { kind: WireKind.model, count: TEST_PARAMS });
  }

  it("reports the state of a fresh federation and who has uploaded", async () => {
    const { federation, sites } = await federationWithSites(app, storage);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];

    const before = await state(a);
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    const afterA = await state(a);
    const afterB = await state(b);

    expect(before).toEqual({
      federationId: federation.id,
      title: "Test federation",
      planHash: federation.planHash,
      status: "training",
      round: 1,
      rounds: 2,
      modelVersion: 0,
      minSites: 2,
      sitesEnrolled: 2,
      sitesActive: 2,
      updatesThisRound: 0,
      uploadedThisRound: false,
      // The test plan sets no deadline: its rounds close as soon as minSites have sent.
      deadline: null,
      deadlineExtensions: 0,
      serverTime: expect.any(String),
      waitingFor: "quorum",
      myUpload: null,
    });
    expect(afterA).toMatchObject({ updatesThisRound: 1, uploadedThisRound: true, round: 1 });
    expect(afterA.myUpload).toMatchObject({
      round: 1,
      status: "accepted",
      modelVersion: null,
      statusCode: 202,
    });
    expect(afterB).toMatchObject({ updatesThisRound: 1, uploadedThisRound: false, round: 1, myUpload: null });
  });

  it("serves model version 0 as an encoded vector equal to the stored initial weights", async () => {
    const { federation, sites } = await federationWithSites(app, storage);

    const model = await downloadModel(sites[0] as EnrollResponse, 0);

    expect(model.round).toBe(0);
    expect(model.numExamples).toBe(0);
    expect(model.values).toEqual(await storage.getModel(federation.id, 0));
  });

  it("runs two rounds with two sites: each new model is the global plus the mean delta, then the final model", async () => {
    // Prepare
    const plan = testPlan();
    const { federation, sites } = await federationWithSites(app, storage, plan);
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    const deltas = [
      [knownDelta(1), knownDelta(-3)],
      [knownDelta(2.5), knownDelta(0.25)],
    ] as const;

    for (const [r, [deltaA, deltaB]] of deltas.entries()) {
      const round = r + 1;
      const global = (await downloadModel(a, round - 1)).values;
      // Expected in float64 from the float32 deltas, rounded once to float32, as FedAvg must do.
      const expected = Float32Array.from(
        global,
        (g, i) => g + ((deltaA[i] as number) + (deltaB[i] as number)) / 2,
      );

      // Execute
      const first = await upload(app, a, round, updateBody(round, deltaA, 120));
      const second = await upload(app, b, round, updateBody(round, deltaB, 80));

      // Assert
      expect(first.statusCode).toBe(202);
      expect(first.json()).toEqual({
        round,
        updatesThisRound: 1,
        minSites: 2,
        aggregated: false,
        receipt: {
          round,
          status: "accepted",
          modelVersion: null,
          at: expect.any(String),
          statusCode: 202,
          reason: null,
        },
      });
      expect(second.statusCode).toBe(202);
      expect(second.json()).toMatchObject({
        round,
        updatesThisRound: 2,
        minSites: 2,
        aggregated: true,
        receipt: { round, status: "counted", modelVersion: round },
      });
      const next = await downloadModel(b, round);
      expect(next.round).toBe(round);
      expect(next.values).toEqual(expected);
      expect(next.values).not.toEqual(global);
      expect(await state(a)).toMatchObject({
        round: round + 1,
        modelVersion: round,
        updatesThisRound: 0,
        status: round === plan.rounds ? "done" : "training",
      });
    }

    const { modelJson, weights } = await fetchFinalModel(app, plan, federation.id, a, b);
    expect(weights.headers["content-type"]).toBe("application/octet-stream");
    const manifest = modelJson.json().weightsManifest[0].weights as Array<{ shape: number[] }>;
    const declared = manifest.reduce((n, w) => n + w.shape.reduce((p, d) => p * d, 1), 0);
    expect(weights.rawPayload.byteLength).toBe(4 * declared);
    const final = await storage.getModel(federation.id, plan.rounds);
    expect(bytesToVector(weights.rawPayload)).toEqual(final);
    expect(await storage.getModelVersions(federation.id)).toEqual([0, 1, 2]);
  });
});
