import { existsSync } from "node:fs";
import type { Server } from "node:http";
import cors from "@fastify/cors";
import fastifyStatic from "@fastify/static";
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from "fastify";
import { apiPaths, type EnrollRequest } from "../core/protocol";
import { adminRoutes } from "./admin-routes";
import { type Config, defaultLimits, type RequestLimits } from "./config";
import { clientErrorHandler, frameworkErrorHandler, HttpError, handleError } from "./http-error";
import { addAdminTokenLimit, enrollRateLimit, registerRateLimits } from "./rate-limits";
import { enrollBody, enrollResponse, errorResponses, healthResponse } from "./schemas";
import { normaliseInviteCode } from "./secrets";
import { addSecurityHeaders, SecureServerResponse } from "./security-headers";
import { siteRoutes } from "./site-routes";
import type { Storage } from "./storage";
import { validatorFactory } from "./validation";

export interface AppOptions {
  config: Pick<Config, "appDir" | "corsOrigins"> & Partial<Pick<Config, "publicUrl" | "limits">>;
  storage: Storage;
  logger?: FastifyServerOptions["logger"];
}

const missingAppPage = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>fedward coordinator</title>
<body><h1>fedward coordinator</h1>
<p>The coordinator is running, but the clinician app has not been built.
Run <code>npm run build</code> (or <code>npm start</code>, which builds first) and reload this page.</p>
</body></html>`;

/**
 * How the server meets a hostile client: timeouts (with Fastify's default requestTimeout of 0 a half-sent
 * request held its connection forever), the security headers on the replies Node and the router write
 * themselves, and JSON bodies validated as sent (validation.ts).
 */
function serverOptions(limits: RequestLimits): FastifyHttpOptions<Server> {
  const requestTimeout = limits.requestTimeoutS * 1000;
  const headersTimeout = limits.headersTimeoutS * 1000;
  return {
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout,
      // How often Node looks for requests past their timeout (its default, 30 s, would add up to that).
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
      ServerResponse: SecureServerResponse,
    },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
  };
}

/** The coordinator as a Fastify instance that is not yet listening: tests drive it with app.inject. */
export function buildApp({ config, storage, logger = false }: AppOptions): FastifyInstance {
  const limits = config.limits ?? defaultLimits;
  const app = Fastify({ logger, ...serverOptions(limits) });
  app.setErrorHandler((error, request, reply) => {
    reply.send(handleError(error, request, reply));
  });
  addSecurityHeaders(app);
  registerRateLimits(app, limits);
  addAdminTokenLimit(app, limits);

  // Sites send bearer tokens, never cookies, so the app may be served from any static host.
  app.register(cors, {
    origin: config.corsOrigins === "*" ? "*" : config.corsOrigins,
    methods: ["GET", "HEAD", "POST"],
    allowedHeaders: ["Authorization", "Content-Type"],
    credentials: false,
    maxAge: 600,
  });

  app.get("/api/health", { schema: { response: { 200: healthResponse } } }, async () => ({ ok: true }));

  // In a plugin of its own so that it is declared after the rate-limit plugin has loaded.
  app.register(async (scope) => {
    scope.post(
      apiPaths.enroll,
      {
        schema: { body: enrollBody, response: { 200: enrollResponse, ...errorResponses } },
        bodyLimit: 1024,
        config: { rateLimit: enrollRateLimit(limits) },
      },
      async (request) => {
        const { inviteCode } = request.body as EnrollRequest;
        await refuseInviteOfFinishedFederation(storage, inviteCode);
        return storage.enroll(inviteCode);
      },
    );
  });

  app.register(siteRoutes(storage));
  app.register(adminRoutes(storage, { publicUrl: config.publicUrl }));

  if (existsSync(config.appDir)) {
    app.register(fastifyStatic, { root: config.appDir, prefix: "/" });
    // The admin page is the same app, which routes on its path.
    app.get("/admin", async (_request, reply) => reply.sendFile("index.html"));
  } else {
    for (const path of ["/", "/admin"]) {
      app.get(path, async (_request, reply) => reply.type("text/html; charset=utf-8").send(missingAppPage));
    }
  }
  return app;
}

/**
 * An unused invite of a federation that has finished all its rounds would enrol a site that can never
 * train. TODO(#12): this belongs in Storage.enroll's transaction; here a federation finishing between the
 * check and the enrolment still lets that one site in, which costs nothing but the site's time.
 */
async function refuseInviteOfFinishedFederation(storage: Storage, typedCode: string): Promise<void> {
  const code = normaliseInviteCode(typedCode);
  if (code === undefined) return;
  const invite = (await storage.listInvites()).find((candidate) => candidate.code === code);
  if (invite === undefined || invite.siteId !== null) return;
  const federation = await storage.getFederation(invite.federationId);
  if (federation?.status === "done") {
    throw new HttpError(
      410,
      `The invite ${code} is for federation "${federation.id}", which has finished all ` +
        `${federation.plan.rounds} rounds; a new site cannot train in it. Ask the coordinator for an ` +
        "invite to a federation that is still training.",
    );
  }
}
