import { MAX_METRICS_EXAMPLES } from "../core/protocol";

/**
 * JSON schemas for every route: Fastify validates params and bodies with them before a handler runs,
 * and serialises replies through them, so no field leaves that is not listed here.
 */
const string = { type: "string" } as const;
const integer = { type: "integer" } as const;
const boolean = { type: "boolean" } as const;

export const errorSchema = {
  type: "object",
  required: ["statusCode", "error", "message"],
  properties: { statusCode: integer, error: string, message: string },
} as const;

export const errorResponses = { "4xx": errorSchema, "5xx": errorSchema } as const;

/** Binary replies are Buffers, which Fastify sends as they are; the schema documents the route. */
export const binaryResponse = { type: "string", description: "application/octet-stream" } as const;

export const enrollBody = {
  type: "object",
  required: ["inviteCode"],
  additionalProperties: false,
  properties: { inviteCode: { type: "string", minLength: 1, maxLength: 64 } },
} as const;

export const enrollResponse = {
  type: "object",
  required: ["federationId", "siteId", "siteLabel", "token", "plan", "planHash"],
  properties: {
    federationId: string,
    siteId: string,
    siteLabel: string,
    token: string,
    plan: { type: "object", additionalProperties: true },
    planHash: string,
  },
} as const;

/**
 * Every federation and site id is a prefix (a plan id: lowercase letters, digits, dashes), a dash and 8 more
 * of those (secrets.ts newId), so a URL with anything else (a NUL, which PostgreSQL cannot store in text)
 * is refused here rather than in SQL. Every route's id params use this schema.
 */
export const idParam = {
  type: "string",
  minLength: 1,
  maxLength: 128,
  pattern: "^[a-z0-9][a-z0-9-]*$",
} as const;
const federationId = idParam;

export const federationParams = {
  type: "object",
  required: ["federationId"],
  properties: { federationId },
} as const;

export const versionParams = {
  type: "object",
  required: ["federationId", "version"],
  properties: { federationId, version: { type: "integer", minimum: 0, maximum: 2147483647 } },
} as const;

export const roundParams = {
  type: "object",
  required: ["federationId", "round"],
  properties: { federationId, round: { type: "integer", minimum: 1, maximum: 2147483647 } },
} as const;

const receipt = {
  type: "object",
  required: ["round", "status", "modelVersion", "at", "statusCode", "reason"],
  properties: {
    round: integer,
    status: { type: "string", enum: ["accepted", "counted", "refused"] },
    modelVersion: { type: ["integer", "null"] },
    at: string,
    statusCode: integer,
    reason: { type: ["string", "null"] },
  },
} as const;

export const stateResponse = {
  type: "object",
  required: [
    "federationId",
    "title",
    "planHash",
    "status",
    "round",
    "rounds",
    "modelVersion",
    "minSites",
    "sitesEnrolled",
    "sitesActive",
    "updatesThisRound",
    "uploadedThisRound",
    "deadline",
    "deadlineExtensions",
    "serverTime",
    "waitingFor",
    "myUpload",
  ],
  properties: {
    federationId: string,
    title: string,
    planHash: string,
    status: { type: "string", enum: ["training", "done"] },
    round: integer,
    rounds: integer,
    modelVersion: integer,
    minSites: integer,
    sitesEnrolled: integer,
    sitesActive: integer,
    updatesThisRound: integer,
    uploadedThisRound: boolean,
    deadline: { type: ["string", "null"] },
    deadlineExtensions: integer,
    serverTime: string,
    waitingFor: { type: ["string", "null"], enum: ["quorum", "sites", null] },
    myUpload: { ...receipt, type: ["object", "null"] },
  },
} as const;

export const stateQuery = {
  type: "object",
  additionalProperties: false,
  properties: { receiptFor: { type: "integer", minimum: 1, maximum: 2147483647 } },
} as const;

export const uploadResponse = {
  type: "object",
  required: ["round", "updatesThisRound", "minSites", "aggregated", "receipt"],
  properties: { round: integer, updatesThisRound: integer, minSites: integer, aggregated: boolean, receipt },
} as const;

export const metricsBody = {
  type: "object",
  required: ["modelVersion", "numExamples", "loss", "accuracy"],
  additionalProperties: false,
  properties: {
    modelVersion: { type: "integer", minimum: 0, maximum: 2147483647 },
    numExamples: { type: "integer", minimum: 0, maximum: MAX_METRICS_EXAMPLES },
    // JSON has no NaN; an overflowing literal (1e999) parses to Infinity, which Ajv's "number" refuses.
    loss: { type: "number", minimum: 0 },
    accuracy: { type: "number", minimum: 0, maximum: 1 },
  },
} as const;

export const metricsResponse = {
  type: "object",
  required: ["modelVersion", "replaced"],
  properties: { modelVersion: integer, replaced: boolean },
} as const;

export const modelJsonResponse = { type: "object", additionalProperties: true } as const;

export const healthResponse = {
  type: "object",
  required: ["ok"],
  properties: { ok: boolean },
} as const;
