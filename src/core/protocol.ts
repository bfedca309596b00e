import type { Plan } from "./plan";

/** The coordinator's HTTP API, shared by the server routes and the site client. */

export interface EnrollRequest {
  inviteCode: string;
}

export interface EnrollResponse {
  federationId: string;
  siteId: string;
  siteLabel: string;
  /** Bearer token for this site; the coordinator stores only its SHA-256. */
  token: string;
  plan: Plan;
  planHash: string;
}

export type FederationStatus = "training" | "done";

export interface FederationState {
  federationId: string;
  title: string;
  planHash: string;
  status: FederationStatus;
  /** The round now open for updates, 1-based; equals rounds + 1 once done. */
  round: number;
  rounds: number;
  /** The latest global model: version v is the model after v rounds (0 = initial). */
  modelVersion: number;
  minSites: number;
  sitesEnrolled: number;
  updatesThisRound: number;
  /** Whether the asking site has already uploaded for `round`. */
  uploadedThisRound: boolean;
}

export interface UploadResponse {
  round: number;
  updatesThisRound: number;
  minSites: number;
  /** True when this upload completed the round and a new global model was made. */
  aggregated: boolean;
}

/**
 * A site's evaluation of one global model version on its held-out split, sent only when the plan says
 * evaluation.reportMetrics (the site approved that). Not noised: outside the privacy guarantee.
 */
export interface MetricsReport {
  modelVersion: number;
  /** Held-out examples the model was evaluated on (the weight of this site in the coordinator's means). */
  numExamples: number;
  /** Mean binary cross-entropy, at least 0. */
  loss: number;
  /** Share of held-out examples classified right, 0 to 1. */
  accuracy: number;
}

/** Most held-out examples a report may claim, so one site cannot swamp the weighted mean by saying so. */
export const MAX_METRICS_EXAMPLES = 10_000_000;

export interface MetricsResponse {
  modelVersion: number;
  /** True when this report replaced the site's earlier one for the same model version. */
  replaced: boolean;
}

export interface ErrorResponse {
  statusCode: number;
  error: string;
  message: string;
}

export const apiPaths = {
  enroll: "/api/enroll",
  state: (federationId: string) => `/api/federations/${encodeURIComponent(federationId)}/state`,
  model: (federationId: string, version: number) =>
    `/api/federations/${encodeURIComponent(federationId)}/models/${version}`,
  update: (federationId: string, round: number) =>
    `/api/federations/${encodeURIComponent(federationId)}/rounds/${round}/update`,
  metrics: (federationId: string) => `/api/federations/${encodeURIComponent(federationId)}/metrics`,
  finalModelJson: (federationId: string) =>
    `/api/federations/${encodeURIComponent(federationId)}/final/model.json`,
  finalWeights: (federationId: string) =>
    `/api/federations/${encodeURIComponent(federationId)}/final/weights.bin`,
} as const;
