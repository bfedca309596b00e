/** JSON schemas of the admin routes (src/core/admin-protocol.ts has the matching types). */
import { idParam } from "./schemas";

const string = { type: "string" } as const;
const integer = { type: "integer" } as const;
const time = { type: "string", format: "date-time" } as const;
const nullableTime = { type: ["string", "null"], format: "date-time" } as const;
const nullableNumber = { type: ["number", "null"] } as const;

function object<P extends Record<string, unknown>>(properties: P) {
  return { type: "object", required: Object.keys(properties), properties } as const;
}

const federation = object({
  id: string,
  title: string,
  planHash: string,
  status: { type: "string", enum: ["training", "done"] },
  currentRound: integer,
  rounds: integer,
  minSites: integer,
  sitesEnrolled: integer,
  invitesOpen: integer,
  createdAt: time,
});

export const adminFederationsResponse = object({ federations: { type: "array", items: federation } });

const site = object({
  id: string,
  label: string,
  enrolledAt: time,
  lastSeenAt: time,
  updatesAccepted: integer,
  revokedAt: nullableTime,
});
const invite = object({ siteLabel: string, createdAt: time, siteId: { type: ["string", "null"] } });

export const adminSitesResponse = object({
  sites: { type: "array", items: site },
  invites: { type: "array", items: invite },
});

const accepted = object({ siteId: string, siteLabel: string, receivedAt: time, l2Norm: nullableNumber });
const refused = object({
  siteId: string,
  siteLabel: string,
  refusedAt: time,
  statusCode: integer,
  reason: string,
  attempts: integer,
});
const closeReason = { type: "string", enum: ["all-reported", "quorum", "deadline", "admin"] } as const;
const siteRef = object({ siteId: string, siteLabel: string });
const round = object({
  round: integer,
  status: { type: "string", enum: ["open", "aggregated"] },
  deadline: nullableTime,
  deadlineExtensions: integer,
  closeReason: { ...closeReason, type: ["string", "null"], enum: [...closeReason.enum, null] },
  waitingFor: { type: "array", items: siteRef },
  openedAt: time,
  aggregatedAt: nullableTime,
  accepted: { type: "array", items: accepted },
  refused: { type: "array", items: refused },
  meanUpdateNorm: nullableNumber,
});

export const adminRoundsResponse = object({
  minSites: integer,
  sitesActive: integer,
  serverTime: time,
  rounds: { type: "array", items: round },
});

export const adminRoundParams = {
  type: "object",
  required: ["federationId", "round"],
  properties: {
    federationId: idParam,
    round: { type: "integer", minimum: 1, maximum: 2147483647 },
  },
} as const;

export const adminSiteParams = {
  type: "object",
  required: ["federationId", "siteId"],
  properties: {
    federationId: idParam,
    siteId: idParam,
  },
} as const;

export const adminDeadlineBody = {
  type: "object",
  required: ["deadline"],
  additionalProperties: false,
  properties: { deadline: { type: "string", format: "date-time", maxLength: 40 } },
} as const;

export const adminMinSitesBody = {
  type: "object",
  required: ["minSites"],
  additionalProperties: false,
  properties: { minSites: { type: "integer", minimum: 1, maximum: 1000 } },
} as const;

export const adminRoundActionResponse = object({
  status: { type: "string", enum: ["training", "done"] },
  currentRound: integer,
  minSites: integer,
  deadline: nullableTime,
  closed: {
    type: ["object", "null"],
    required: ["round", "modelVersion", "reason"],
    properties: { round: integer, modelVersion: integer, reason: closeReason },
  },
});

const siteMetrics = object({
  siteId: string,
  siteLabel: string,
  numExamples: integer,
  loss: { type: "number" },
  accuracy: { type: "number" },
  reportedAt: time,
});
const versionMetrics = object({
  modelVersion: integer,
  sitesReported: integer,
  numExamples: integer,
  meanAccuracy: nullableNumber,
  meanLoss: nullableNumber,
  sites: { type: "array", items: siteMetrics },
});

export const adminMetricsResponse = object({
  reportMetrics: { type: "boolean" },
  versions: { type: "array", items: versionMetrics },
});

export const adminInviteBody = {
  type: "object",
  required: ["siteLabel"],
  additionalProperties: false,
  // At least one character that is not a space, and no control character (PostgreSQL cannot store a NUL in
  // text, and a line break would not show): the label is shown to the site and in the admin page.
  properties: {
    siteLabel: {
      type: "string",
      minLength: 1,
      maxLength: 100,
      pattern: "^[^\\u0000-\\u001F\\u007F]*[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$",
    },
  },
} as const;

export const adminInviteResponse = object({
  federationId: string,
  siteLabel: string,
  code: string,
  url: string,
});
