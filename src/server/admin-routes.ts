import type { FastifyInstance, FastifyRequest } from "fastify";
import type {
  AdminDeadlineRequest,
  AdminInviteRequest,
  AdminMetricsResponse,
  AdminMinSitesRequest,
  AdminRoundsResponse,
} from "../core/admin-protocol";
import {
  adminDeadlineBody,
  adminFederationsResponse,
  adminInviteBody,
  adminInviteResponse,
  adminMetricsResponse,
  adminMinSitesBody,
  adminRoundActionResponse,
  adminRoundParams,
  adminRoundsResponse,
  adminSiteParams,
  adminSitesResponse,
} from "./admin-schemas";
import { HttpError } from "./http-error";
import { errorResponses, federationParams } from "./schemas";
import type { Federation, Storage } from "./storage";

export interface AdminRoutesOptions {
  /** Base of invite links (PUBLIC_URL); undefined = the origin the admin reached the coordinator at. */
  publicUrl: string | undefined;
}

const tokenHelp =
  "Send 'Authorization: Bearer <admin token>'; the coordinator printed the token at its first start " +
  "(`npm run coordinator -- --new-admin-token` makes a new one).";

/** Routes under /api/admin for the coordinator's admin, who holds the admin token. */
export function adminRoutes(storage: Storage, { publicUrl }: AdminRoutesOptions) {
  return async (app: FastifyInstance) => {
    app.addHook("onRequest", async (request, reply) => {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
      if (!match) {
        reply.header("www-authenticate", "Bearer");
        throw new HttpError(401, `This is an admin route. ${tokenHelp}`);
      }
      const token = match[1] as string;
      if (await storage.admin.isAdminToken(token)) {
        reply.header("cache-control", "no-store");
        return;
      }
      if (await storage.authenticate(token)) {
        throw new HttpError(403, "This is a site's token; admin routes need the coordinator's admin token.");
      }
      reply.header("www-authenticate", 'Bearer error="invalid_token"');
      throw new HttpError(401, `The bearer token is not this coordinator's admin token. ${tokenHelp}`);
    });

    const federationOf = async (request: FastifyRequest): Promise<Federation> => {
      const { federationId } = request.params as { federationId: string };
      const federation = await storage.getFederation(federationId);
      if (!federation) throw new HttpError(404, `There is no federation "${federationId}".`);
      return federation;
    };

    app.get(
      "/api/admin/federations",
      { schema: { response: { 200: adminFederationsResponse, ...errorResponses } } },
      async () => ({ federations: await storage.admin.listFederations() }),
    );

    app.get(
      "/api/admin/federations/:federationId/sites",
      { schema: { params: federationParams, response: { 200: adminSitesResponse, ...errorResponses } } },
      async (request) => storage.admin.listSites((await federationOf(request)).id),
    );

    app.get(
      "/api/admin/federations/:federationId/rounds",
      { schema: { params: federationParams, response: { 200: adminRoundsResponse, ...errorResponses } } },
      async (request): Promise<AdminRoundsResponse> => {
        // Settled first: a deadline that passed shows as the close it caused, not as an open round.
        const { federation } = await storage.settle((await federationOf(request)).id);
        return storage.admin.roundsOf(federation);
      },
    );

    // The round lifecycle: close the open round early (it needs its quorum), move its deadline, change the
    // quorum, revoke a site (its token stops working at once; an update it already sent stays counted).
    const actionSchema = (params: object, body?: object) => ({
      schema: {
        params,
        ...(body ? { body } : {}),
        response: { 200: adminRoundActionResponse, ...errorResponses },
      },
    });
    app.post(
      "/api/admin/federations/:federationId/rounds/:round/close",
      actionSchema(adminRoundParams),
      async (request) => {
        const { round } = request.params as { round: number };
        return storage.roundAction((await federationOf(request)).id, { kind: "close", round });
      },
    );
    app.post(
      "/api/admin/federations/:federationId/rounds/:round/deadline",
      actionSchema(adminRoundParams, adminDeadlineBody),
      async (request) => {
        const { round } = request.params as { round: number };
        const deadline = Date.parse((request.body as AdminDeadlineRequest).deadline);
        return storage.roundAction((await federationOf(request)).id, { kind: "deadline", round, deadline });
      },
    );
    app.post(
      "/api/admin/federations/:federationId/min-sites",
      actionSchema(federationParams, adminMinSitesBody),
      async (request) => {
        const { minSites } = request.body as AdminMinSitesRequest;
        return storage.roundAction((await federationOf(request)).id, { kind: "min-sites", minSites });
      },
    );
    app.post(
      "/api/admin/federations/:federationId/sites/:siteId/revoke",
      actionSchema(adminSiteParams),
      async (request) => {
        const { siteId } = request.params as { siteId: string };
        return storage.roundAction((await federationOf(request)).id, { kind: "revoke", siteId });
      },
    );

    app.get(
      "/api/admin/federations/:federationId/metrics",
      { schema: { params: federationParams, response: { 200: adminMetricsResponse, ...errorResponses } } },
      async (request): Promise<AdminMetricsResponse> => {
        const { id, plan } = await federationOf(request);
        const reportMetrics = plan.evaluation.reportMetrics === true;
        return { reportMetrics, versions: reportMetrics ? await storage.admin.listMetrics(id) : [] };
      },
    );

    app.post(
      "/api/admin/federations/:federationId/invites",
      {
        schema: {
          params: federationParams,
          body: adminInviteBody,
          response: { 201: adminInviteResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const federation = await federationOf(request);
        const siteLabel = (request.body as AdminInviteRequest).siteLabel.trim();
        const invite = await storage.createInvite(federation.id, siteLabel);
        const base = publicUrl ?? `${request.protocol}://${request.host}`;
        reply.code(201);
        return {
          federationId: federation.id,
          siteLabel,
          code: invite.code,
          url: `${base}/?invite=${encodeURIComponent(invite.code)}`,
        };
      },
    );
  };
}
