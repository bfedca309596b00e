/** JSON schemas of the admin routes (src/core/admin-protocol.ts has the matching types). */
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
const round = object({
  round: integer,
  status: { type: "string", enum: ["open", "aggregated"] },
  openedAt: time,
  aggregatedAt: nullableTime,
  accepted: { type: "array", items: accepted },
  refused: { type: "array", items: refused },
  meanUpdateNorm: nullableNumber,
});

export const adminRoundsResponse = object({ minSites: integer, rounds: { type: "array", items: round } });

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
  // At least one character that is not a space; the label is shown to the site and in the admin page.
  properties: { siteLabel: { type: "string", minLength: 1, maxLength: 100, pattern: "\\S" } },
} as const;

export const adminInviteResponse = object({
  federationId: string,
  siteLabel: string,
  code: string,
  url: string,
});
