import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiPaths, type EnrollResponse } from "../../../src/core/protocol";
import { encodeVector, WireKind, wireByteLength } from "../../../src/core/wire";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import {
  bearer,
  closeTestApp,
  federationWithSites,
  knownDelta,
  openTestApp,
  TEST_PARAMS,
  testPlan,
  updateBody,
  upload,
} from "./helpers";

describe("coordinator app: rejections", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let a: EnrollResponse;
  let other: EnrollResponse;
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    [a] = (await federationWithSites(app, storage)).sites as [EnrollResponse];
    [other] = (await federationWithSites(app, storage)).sites as [EnrollResponse];
  });
  afterAll(() => closeTestApp({ app, db }));

  const expectError = (
    response: { statusCode: number; json(): unknown },
    status: number,
    message: RegExp,
  ) => {
    expect(response.statusCode).toBe(status);
    const body = response.json() as { statusCode: number; error: string; message: string };
    expect(body.statusCode).toBe(status);
    expect(body.error).toEqual(expect.any(String));
    expect(body.message).toMatch(message);
  };

  it("answers 401 without credentials and for an unknown token", async () => {
    const none = await app.inject({ url: apiPaths.state(a.federationId) });
    const unknown = await app.inject({ url: apiPaths.state(a.federationId), headers: bearer("nope") });
    const basic = await app.inject({
      url: apiPaths.model(a.federationId, 0),
      headers: { authorization: "Basic dXNlcjpwYXNz" },
    });

    expectError(none, 401, /Authorization: Bearer <token>/);
    expect(none.headers["www-authenticate"]).toBe("Bearer");
    expectError(unknown, 401, /token is not known/);
    expectError(basic, 401, /Authorization: Bearer <token>/);
  });

  it("answers 403 to a site of another federation, on every site route", async () => {
    const urls = [
      apiPaths.state(a.federationId),
      apiPaths.model(a.federationId, 0),
      apiPaths.finalModelJson(a.federationId),
      apiPaths.finalWeights(a.federationId),
    ];
    for (const url of urls) {
      const response = await app.inject({ url, headers: bearer(other.token) });
      expectError(
        response,
        403,
        new RegExp(`enrolled in federation "${other.federationId}", not "${a.federationId}"`),
      );
    }
    const uploaded = await upload(app, other, 1, updateBody(1, knownDelta(1)));
    expect(uploaded.statusCode).toBe(202);
    const crossUpload = await app.inject({
      method: "POST",
      url: apiPaths.update(a.federationId, 1),
      headers: { ...bearer(other.token), "content-type": "application/octet-stream" },
      payload: updateBody(1, knownDelta(1)),
    });
    expectError(crossUpload, 403, /not "/);
  });

  it("answers 404 for a model version that does not exist yet", async () => {
    const response = await app.inject({ url: apiPaths.model(a.federationId, 1), headers: bearer(a.token) });

    expectError(response, 404, /Model version 1 does not exist yet; the latest is version 0/);
  });

  it("answers 409 for the final model while training", async () => {
    for (const url of [apiPaths.finalModelJson(a.federationId), apiPaths.finalWeights(a.federationId)]) {
      const response = await app.inject({ url, headers: bearer(a.token) });
      expectError(response, 409, /still training \(round 1 of 2\)/);
    }
  });

  it("answers 409 for an upload to a round that is not open, naming the open round", async () => {
    const response = await upload(app, a, 2, updateBody(2, knownDelta(1)));

    expectError(response, 409, /Round 2 is not open; round 1 is/);
  });

  it("answers 400 when the body's round differs from the URL's", async () => {
    const response = await upload(app, a, 1, updateBody(2, knownDelta(1)));

    expectError(response, 400, /update for round 2 but was sent to round 1/);
  });

  it("answers 400 for a body of the wrong length, count or kind", async () => {
    const full = updateBody(1, knownDelta(1));
    const short = full.subarray(0, full.length - 4);
    const fewer = updateBody(1, knownDelta(1).subarray(0, TEST_PARAMS - 1));
    const model = Buffer.from(
      encodeVector({ kind: WireKind.model, round: 1, numExamples: 0, values: knownDelta(1) }),
    );

    expectError(
      await upload(app, a, 1, short),
      400,
      /^The update body is not valid: length: 11 values need 64 bytes/,
    );
    expectError(
      await upload(app, a, 1, fewer),
      400,
      /count: the plan's model has 11 weights, the body declares 10/,
    );
    expectError(await upload(app, a, 1, model), 400, /kind: expected 2, got 1/);
    expectError(await upload(app, a, 1, Buffer.alloc(0)), 400, /body is 0 bytes/);
  });

  it("answers 400 for NaN or infinite values", async () => {
    const nan = knownDelta(1);
    nan[3] = Number.NaN;
    const inf = knownDelta(1);
    inf[5] = Number.NEGATIVE_INFINITY;

    expectError(
      await upload(app, a, 1, updateBody(1, nan)),
      400,
      /value 3 is NaN; every weight must be a finite/,
    );
    expectError(await upload(app, a, 1, updateBody(1, inf)), 400, /value 5 is -Infinity/);
  });

  it("answers 400 for an update larger than any clipped, noised delta can be", async () => {
    // Finite but huge: a few such updates would overflow the global model to Infinity.
    const huge = knownDelta(1);
    huge[2] = 3.4e38;
    const justUnder = new Float32Array(TEST_PARAMS);
    justUnder[0] = 1 + 0.5 * 2 * (2 * Math.sqrt(TEST_PARAMS) + 60) - 1e-3;

    expectError(await upload(app, a, 1, updateBody(1, huge)), 400, /L2 norm is 3\.40+e\+38.*not clipped/);
    const accepted = await upload(app, a, 1, updateBody(1, justUnder));
    expect(accepted.statusCode).toBe(202);
  });

  it("answers 413 for a body larger than this federation's update, saying the expected size", async () => {
    const expected = wireByteLength(TEST_PARAMS);
    const oneMore = Buffer.concat([updateBody(1, knownDelta(1)), Buffer.alloc(1)]);

    const declared = await upload(app, a, 1, oneMore);
    const chunked = await app.inject({
      method: "POST",
      url: apiPaths.update(a.federationId, 1),
      headers: { ...bearer(a.token), "content-type": "application/octet-stream" },
      payload: Readable.from([oneMore.subarray(0, 30), oneMore.subarray(30)]),
    });

    expect(expected).toBe(64);
    expectError(
      declared,
      413,
      /must be exactly 64 bytes for this federation's model, but 65 bytes were sent/,
    );
    expectError(chunked, 413, /must be exactly 64 bytes .* more than 64 bytes were sent/);
  });

  it("answers 415 for an update that is not application/octet-stream", async () => {
    const response = await app.inject({
      method: "POST",
      url: apiPaths.update(a.federationId, 1),
      headers: bearer(a.token),
      payload: { values: [1, 2, 3] },
    });

    expectError(response, 415, /application\/octet-stream/);

    const textPlain = await app.inject({
      method: "POST",
      url: apiPaths.update(a.federationId, 1),
      headers: { ...bearer(a.token), "content-type": "application/xml" },
      payload: "<update/>",
    });
    expectError(textPlain, 415, /does not take Content-Type "application\/xml".*application\/octet-stream/);
  });

  it("answers 409 for a second upload of a site in the same round, and keeps the first", async () => {
    const [fresh] = (await federationWithSites(app, storage)).sites as [EnrollResponse];
    const first = await upload(app, fresh, 1, updateBody(1, knownDelta(1)));

    const second = await upload(app, fresh, 1, updateBody(1, knownDelta(2)));

    expect(first.statusCode).toBe(202);
    expectError(second, 409, /already uploaded its update for round 1/);
    const state = await storage.getState(fresh.federationId, fresh.siteId);
    expect(state.updatesThisRound).toBe(1);
  });

  it("answers 409 to uploads once the federation is done", async () => {
    const plan = testPlan({ rounds: 1 });
    const [x, y] = (await federationWithSites(app, storage, plan)).sites as [EnrollResponse, EnrollResponse];
    await upload(app, x, 1, updateBody(1, knownDelta(1)));
    await upload(app, y, 1, updateBody(1, knownDelta(2)));

    const late = await upload(app, x, 2, updateBody(2, knownDelta(3)));

    expectError(late, 409, /finished all 1 rounds and accepts no more updates/);
  });

  it("validates route parameters", async () => {
    const badVersion = await app.inject({
      url: `/api/federations/${a.federationId}/models/-1`,
      headers: bearer(a.token),
    });
    const badRound = await upload(app, a, 0, updateBody(0, knownDelta(1)));

    expectError(badVersion, 400, /version/);
    expectError(badRound, 400, /round/);
  });
});
