import { Transform } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { tfjsModelJson, tfjsWeightsBin } from "../core/model-format";
import { isDpSgd, paramCount } from "../core/plan";
import { maxDpSgdDeltaNorm } from "../core/privacy/dp-sgd";
import { maxReleasedNorm } from "../core/privacy/mechanism";
import type { MetricsReport } from "../core/protocol";
import { l2Norm } from "../core/vector";
import { decodeVector, encodeVector, WireError, WireKind, wireByteLength } from "../core/wire";
import { HttpError, statusOf } from "./http-error";
import { ROUND_CLOCK_MS, startRoundClock } from "./round-clock";
import {
  binaryResponse,
  errorResponses,
  federationParams,
  metricsBody,
  metricsResponse,
  modelJsonResponse,
  roundParams,
  stateQuery,
  stateResponse,
  uploadResponse,
  versionParams,
} from "./schemas";
import type { Federation, Site, Storage } from "./storage";

/** What the onRequest hook learned from the bearer token, for the handlers of this plugin. */
interface SiteAuth {
  site: Site;
  federation: Federation;
}

const auths = new WeakMap<FastifyRequest, SiteAuth>();

function authOf(request: FastifyRequest): SiteAuth {
  const auth = auths.get(request);
  if (!auth) throw new Error("a site route ran without the authentication hook");
  return auth;
}

const INT32_MAX = 2147483647;

export interface SiteRoutesOptions {
  /** How often the round clock looks for passed deadlines (round-clock.ts); 0 runs no clock. */
  roundClockMs?: number;
}

/**
 * Routes under /api/federations/:federationId, all for enrolled sites holding a bearer token, and the
 * round clock that closes their rounds at the deadline, which lives as long as the app.
 */
export function siteRoutes(storage: Storage, { roundClockMs = ROUND_CLOCK_MS }: SiteRoutesOptions = {}) {
  return async (app: FastifyInstance) => {
    let clock: ReturnType<typeof startRoundClock> | undefined;
    if (roundClockMs > 0) {
      app.addHook("onReady", async () => {
        clock = startRoundClock(storage, app.log, roundClockMs);
      });
      app.addHook("onClose", async () => clock?.stop());
    }

    app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, body, done) =>
      done(null, body),
    );

    // onRequest runs before the body is read, so a stranger cannot make the coordinator buffer an upload.
    app.addHook("onRequest", async (request, reply) => {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
      if (!match) {
        reply.header("www-authenticate", "Bearer");
        throw new HttpError(
          401,
          "This request needs the header 'Authorization: Bearer <token>' from enrolment.",
        );
      }
      const site = await storage.authenticate(match[1] as string);
      if (!site) {
        reply.header("www-authenticate", 'Bearer error="invalid_token"');
        const revoked = await storage.revokedAt(match[1] as string);
        if (revoked) {
          throw new HttpError(
            401,
            `The federation's admin revoked this site on ${revoked.toISOString()}; its token no longer works. ` +
              "Ask the admin for a new invite to take part again.",
          );
        }
        throw new HttpError(
          401,
          "The bearer token is not known to this coordinator; enrol with an invite code.",
        );
      }
      const { federationId } = request.params as { federationId: string };
      const federation =
        site.federationId === federationId ? await storage.getFederation(federationId) : undefined;
      if (!federation) {
        throw new HttpError(
          403,
          `This site is enrolled in federation "${site.federationId}", not "${federationId}".`,
        );
      }
      auths.set(request, { site, federation });
      await storage.touchSite(site.id);
    });

    const prefix = "/api/federations/:federationId";

    app.get(
      `${prefix}/state`,
      {
        schema: {
          params: federationParams,
          querystring: stateQuery,
          response: { 200: stateResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { site, federation } = authOf(request);
        const { receiptFor } = request.query as { receiptFor?: number };
        reply.header("cache-control", "no-store");
        return storage.getState(federation.id, site.id, receiptFor);
      },
    );

    app.get(
      `${prefix}/models/:version`,
      { schema: { params: versionParams, response: { 200: binaryResponse, ...errorResponses } } },
      async (request, reply) => {
        const { federation } = authOf(request);
        const { version } = request.params as { version: number };
        const values = await storage.getModel(federation.id, version);
        if (!values) {
          throw new HttpError(
            404,
            `Model version ${version} does not exist yet; the latest is version ${federation.currentRound - 1}.`,
          );
        }
        // A model version never changes once made, so a site may cache it for good.
        reply
          .type("application/octet-stream")
          .header("cache-control", "private, max-age=31536000, immutable");
        return toBuffer(encodeVector({ kind: WireKind.model, round: version, numExamples: 0, values }));
      },
    );

    app.post(
      `${prefix}/rounds/:round/update`,
      {
        schema: { params: roundParams, response: { 202: uploadResponse, ...errorResponses } },
        // The real limit depends on the federation's plan and is enforced per request in preParsing;
        // this static one only has to be above any plan's update.
        bodyLimit: INT32_MAX,
        onError: async (request, _reply, error) => recordRefusal(storage, request, error),
        preParsing: async (request, _reply, payload) => {
          const expected = wireByteLength(paramCount(authOf(request).federation.plan));
          const declared = Number(request.headers["content-length"]);
          if (declared > expected) throw tooLarge(expected, `${declared}`);
          return limitBytes(payload, expected);
        },
      },
      async (request, reply) => {
        const { site, federation } = authOf(request);
        const { round } = request.params as { round: number };
        if (!Buffer.isBuffer(request.body)) {
          throw new HttpError(
            415,
            "Send the update with 'Content-Type: application/octet-stream' (an encoded vector).",
          );
        }
        const body = request.body;
        let update: ReturnType<typeof decodeVector>;
        try {
          update = decodeVector(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), {
            kind: WireKind.update,
            count: paramCount(federation.plan),
          });
        } catch (error) {
          if (error instanceof WireError)
            throw new HttpError(400, `The update body is not valid: ${error.message}.`);
          throw error;
        }
        if (update.round !== round) {
          throw new HttpError(
            400,
            `The body is an update for round ${update.round} but was sent to round ${round}.`,
          );
        }
        const norm = l2Norm(update.values);
        const { plan } = federation;
        // DP-SGD: the most an honest round's steps can move the weights; site-update: the clipped, noised delta.
        const bound = isDpSgd(plan)
          ? maxDpSgdDeltaNorm(plan, update.values.length)
          : maxReleasedNorm(plan.privacy, update.values.length);
        if (norm > bound) {
          const most = isDpSgd(plan)
            ? `the most an honest DP-SGD round of this plan can reach (${plan.privacy.stepsPerRound} steps of ` +
              `gradients clipped to ${plan.privacy.clipNorm}, with the plan's noise and learning rate)`
            : `the most a delta clipped to ${plan.privacy.clipNorm} with the plan's noise can reach`;
          throw new HttpError(
            400,
            `The update's L2 norm is ${norm.toPrecision(6)}, above ${bound.toPrecision(6)}, ${most}: it was not clipped.`,
          );
        }
        if (update.numExamples > INT32_MAX) {
          throw new HttpError(400, `numExamples is ${update.numExamples}; it must be at most ${INT32_MAX}.`);
        }
        const result = await storage.recordUpdate(
          federation.id,
          site.id,
          round,
          update.values,
          update.numExamples,
        );
        reply.code(202);
        return result;
      },
    );

    // A site's held-out evaluation of a model version, only under a plan whose evaluation.reportMetrics the
    // site approved. 403, not 409: the plan is fixed, so no later state of the federation makes it allowed.
    app.post(
      `${prefix}/metrics`,
      {
        schema: {
          params: federationParams,
          body: metricsBody,
          response: { 200: metricsResponse, ...errorResponses },
        },
      },
      async (request) => {
        const { site, federation } = authOf(request);
        if (federation.plan.evaluation.reportMetrics !== true) {
          throw new HttpError(
            403,
            "This federation's plan does not ask sites for metrics (evaluation.reportMetrics), so the sites " +
              "did not agree to send them; nothing was stored.",
          );
        }
        return storage.recordMetrics(federation.id, site.id, request.body as MetricsReport);
      },
    );

    app.get(
      `${prefix}/final/model.json`,
      { schema: { params: federationParams, response: { 200: modelJsonResponse, ...errorResponses } } },
      async (request) => {
        const { federation } = authOf(request);
        assertDone(federation);
        return tfjsModelJson(federation.plan);
      },
    );

    app.get(
      `${prefix}/final/weights.bin`,
      { schema: { params: federationParams, response: { 200: binaryResponse, ...errorResponses } } },
      async (request, reply) => {
        const { federation } = authOf(request);
        assertDone(federation);
        const weights = await storage.getModel(federation.id, federation.currentRound - 1);
        if (!weights) throw new Error(`federation ${federation.id} is done but has no final model`);
        reply.type("application/octet-stream");
        return toBuffer(tfjsWeightsBin(weights));
      },
    );
  };
}

/** A 4xx on an upload by a known site, for a round of its plan, is kept for the admin page. */
async function recordRefusal(storage: Storage, request: FastifyRequest, error: Error): Promise<void> {
  const auth = auths.get(request);
  if (!auth) return;
  const statusCode = statusOf(error);
  // Params are still strings when the error comes before validation (a body over the limit).
  const round = Number((request.params as { round: unknown }).round);
  if (statusCode >= 500 || !Number.isInteger(round) || round < 1 || round > auth.federation.plan.rounds)
    return;
  await storage
    .recordRefusal(auth.federation.id, auth.site.id, round, statusCode, error.message.slice(0, 500))
    .catch((failure: unknown) => request.log.error({ err: failure }, "could not record a refused update"));
}

function assertDone(federation: Federation): void {
  if (federation.status !== "done") {
    throw new HttpError(
      409,
      `The federation is still training (round ${federation.currentRound} of ${federation.plan.rounds}); ` +
        "the final model is available once all rounds are done.",
    );
  }
}

function tooLarge(expected: number, got: string): HttpError {
  return new HttpError(
    413,
    `The update body must be exactly ${expected} bytes for this federation's model, but ${got} bytes were sent.`,
  );
}

/** Passes bytes through until more than `limit` arrive (a chunked body has no Content-Length to check). */
function limitBytes(payload: NodeJS.ReadableStream, limit: number): Transform {
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > limit) callback(tooLarge(limit, `more than ${limit}`));
      else callback(null, chunk);
    },
  });
  payload.on("error", (error) => counter.destroy(error));
  return payload.pipe(counter);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
