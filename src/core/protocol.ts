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
  finalModelJson: (federationId: string) =>
    `/api/federations/${encodeURIComponent(federationId)}/final/model.json`,
  finalWeights: (federationId: string) =>
    `/api/federations/${encodeURIComponent(federationId)}/final/weights.bin`,
} as const;
