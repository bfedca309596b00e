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
  /** The quorum: the plan's minSites unless the admin changed it. */
  minSites: number;
  sitesEnrolled: number;
  /** Enrolled sites whose token was not revoked: the sites a round waits for. */
  sitesActive: number;
  updatesThisRound: number;
  /** Whether the asking site has already uploaded for `round`. */
  uploadedThisRound: boolean;
  /**
   * When the open round closes if at least minSites sites have sent by then (ISO 8601); null when the round
   * has no deadline (a plan without roundDeadline: it closes as soon as minSites have) or once done.
   */
  deadline: string | null;
  /** How often the open round's deadline moved on because fewer than minSites had sent by then. */
  deadlineExtensions: number;
  /** The coordinator's clock when it answered, so a page can show the time left whatever its own clock says. */
  serverTime: string;
  /**
   * Why the open round has not closed: "quorum" while fewer than minSites have sent; "sites" once they have,
   * while it waits for the other active sites until the deadline; null once done. Counts only: which sites
   * are missing is for the admin.
   */
  waitingFor: "quorum" | "sites" | null;
  /** The coordinator's receipt for the asking site's upload (see UploadReceipt); null when it has none. */
  myUpload: UploadReceipt | null;
}

/**
 * What became of a site's upload for a round, as the coordinator recorded it, so a site whose reply was lost
 * can still learn it. "accepted": in the open round, and counted when it closes (an accepted update is never
 * dropped); "counted": in the aggregate that is model version `modelVersion`; "refused": not counted, and
 * `reason` is the refusal the site was (or would have been) sent.
 */
export interface UploadReceipt {
  round: number;
  status: "accepted" | "counted" | "refused";
  /** The model version the update went into (its round), once the round closed; null otherwise. */
  modelVersion: number | null;
  /** When the coordinator received or (last) refused it, ISO 8601. */
  at: string;
  /** 202 for an accepted update, the HTTP status of the refusal otherwise. */
  statusCode: number;
  reason: string | null;
}

export interface UploadResponse {
  round: number;
  updatesThisRound: number;
  minSites: number;
  /** True when this upload completed the round and a new global model was made. */
  aggregated: boolean;
  /** The coordinator's receipt: accepted, or counted in model version `round` when this upload closed it. */
  receipt: UploadReceipt;
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
  /** `receiptFor`: the round whose receipt `myUpload` answers (default: the latest the site sent to). */
  state: (federationId: string, receiptFor?: number) =>
    `/api/federations/${encodeURIComponent(federationId)}/state${receiptFor === undefined ? "" : `?receiptFor=${receiptFor}`}`,
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
