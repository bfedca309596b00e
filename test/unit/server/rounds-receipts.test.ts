import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EnrollResponse } from "../../../src/core/protocol";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import { closeTestApp, federationWithSites, knownDelta, testPlan, updateBody, upload } from "./helpers";
import { clockedApp, fakeClock, siteState } from "./rounds-helpers";

describe("upload receipts on the state route", () => {
  const clock = fakeClock();
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  beforeAll(async () => {
    ({ db, storage, app } = await clockedApp(clock));
  });
  afterAll(() => closeTestApp({ app, db }));

  it("tells a site whose reply to the round-closing upload was lost that its update was counted, and in which model", async () => {
    // Prepare: b's upload closes round 1, and its reply never reaches b.
    const { sites } = await federationWithSites(app, storage, testPlan({ rounds: 2 }));
    const [a, b] = sites as [EnrollResponse, EnrollResponse];
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    expect((await upload(app, b, 1, updateBody(1, knownDelta(2)))).json()).toMatchObject({
      aggregated: true,
    });

    // Execute: b retries the same bytes, is refused, and asks.
    const retry = await upload(app, b, 1, updateBody(1, knownDelta(2)));
    const state = await siteState(app, b, 1);

    // Assert
    expect(retry.statusCode).toBe(409);
    expect(retry.json().message).toMatch(
      /Round 1 is not open: this site's update for it was counted in model version 1\. Round 2 is open/,
    );
    expect(state).toMatchObject({ round: 2, uploadedThisRound: false });
    expect(state.myUpload).toEqual({
      round: 1,
      status: "counted",
      modelVersion: 1,
      at: expect.any(String),
      statusCode: 202,
      reason: null,
    });
  });

  it("answers accepted while the round is open, counted once it closed, and the latest round by default", async () => {
    // Prepare
    const { sites } = await federationWithSites(app, storage, testPlan({ rounds: 2 }));
    const [a, b] = sites as [EnrollResponse, EnrollResponse];

    // Execute and assert
    expect((await siteState(app, a)).myUpload).toBeNull();
    await upload(app, a, 1, updateBody(1, knownDelta(1)));
    expect((await siteState(app, a)).myUpload).toMatchObject({
      round: 1,
      status: "accepted",
      modelVersion: null,
    });
    // A retry while the round is open is refused as a duplicate, and the receipt still says accepted.
    expect((await upload(app, a, 1, updateBody(1, knownDelta(1)))).statusCode).toBe(409);
    expect((await siteState(app, a)).myUpload).toMatchObject({ round: 1, status: "accepted" });
    await upload(app, b, 1, updateBody(1, knownDelta(2)));
    expect((await siteState(app, a)).myUpload).toMatchObject({
      round: 1,
      status: "counted",
      modelVersion: 1,
    });
    await upload(app, a, 2, updateBody(2, knownDelta(3)));
    expect((await siteState(app, a)).myUpload).toMatchObject({ round: 2, status: "accepted" });
    expect((await siteState(app, a, 1)).myUpload).toMatchObject({
      round: 1,
      status: "counted",
      modelVersion: 1,
    });
    expect((await siteState(app, b, 2)).myUpload).toBeNull();
  });

  it("gives a refused upload's receipt with the reason the site was sent", async () => {
    const { sites } = await federationWithSites(app, storage, testPlan());
    const site = sites[0] as EnrollResponse;
    const unclipped = new Float32Array(knownDelta(1).length).fill(100);

    const refused = await upload(app, site, 1, updateBody(1, unclipped));
    const receipt = (await siteState(app, site)).myUpload;

    expect(refused.statusCode).toBe(400);
    expect(receipt).toMatchObject({ round: 1, status: "refused", statusCode: 400, modelVersion: null });
    expect(receipt?.reason).toBe(refused.json().message);
  });

  it("refuses a receipt round that is not a round number", async () => {
    const { sites } = await federationWithSites(app, storage, testPlan());
    const site = sites[0] as EnrollResponse;

    const response = await app.inject({
      url: `/api/federations/${site.federationId}/state?receiptFor=zero`,
      headers: { authorization: `Bearer ${site.token}` },
    });

    expect(response.statusCode).toBe(400);
  });
});
