import { existsSync } from "node:fs";
import cors from "@fastify/cors";
import fastifyStatic from "@fastify/static";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { apiPaths, type EnrollRequest } from "../core/protocol";
import { adminRoutes } from "./admin-routes";
import type { Config } from "./config";
import { handleError } from "./http-error";
import { enrollBody, enrollResponse, errorResponses, healthResponse } from "./schemas";
import { addSecurityHeaders } from "./security-headers";
import { siteRoutes } from "./site-routes";
import type { Storage } from "./storage";

export interface AppOptions {
  config: Pick<Config, "appDir" | "corsOrigins"> & Partial<Pick<Config, "publicUrl">>;
  storage: Storage;
  logger?: FastifyServerOptions["logger"];
}

const missingAppPage = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>fedward coordinator</title>
<body><h1>fedward coordinator</h1>
<p>The coordinator is running, but the clinician app has not been built.
Run <code>npm run build</code> (or <code>npm start</code>, which builds first) and reload this page.</p>
</body></html>`;

/** The coordinator as a Fastify instance that is not yet listening: tests drive it with app.inject. */
export function buildApp({ config, storage, logger = false }: AppOptions): FastifyInstance {
  const app = Fastify({ logger });
  app.setErrorHandler((error, request, reply) => {
    reply.send(handleError(error, request, reply));
  });
  addSecurityHeaders(app);

  // Sites send bearer tokens, never cookies, so the app may be served from any static host.
  app.register(cors, {
    origin: config.corsOrigins === "*" ? "*" : config.corsOrigins,
    methods: ["GET", "HEAD", "POST"],
    allowedHeaders: ["Authorization", "Content-Type"],
    credentials: false,
    maxAge: 600,
  });

  app.get("/api/health", { schema: { response: { 200: healthResponse } } }, async () => ({ ok: true }));

  app.post(
    apiPaths.enroll,
    { schema: { body: enrollBody, response: { 200: enrollResponse, ...errorResponses } } },
    async (request) => storage.enroll((request.body as EnrollRequest).inviteCode),
  );

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
