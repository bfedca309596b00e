import type { FederationStatus } from "./protocol";

/**
 * The coordinator's admin API (`Authorization: Bearer <admin token>`), shared by the server routes and the
 * admin page. Times are ISO 8601 strings. Over rounds the coordinator knows participation, the norms of
 * the updates as received, and timing; evaluation metrics only where the plan asks the sites for them
 * (evaluation.reportMetrics), which each site approved with the plan.
 */

export interface AdminFederation {
  id: string;
  title: string;
  planHash: string;
  status: FederationStatus;
  /** The round open for updates; rounds + 1 once done. */
  currentRound: number;
  rounds: number;
  minSites: number;
  sitesEnrolled: number;
  /** Invites not used yet. */
  invitesOpen: number;
  createdAt: string;
}

export interface AdminFederationsResponse {
  federations: AdminFederation[];
}

export interface AdminSite {
  id: string;
  label: string;
  enrolledAt: string;
  /** The site's latest authenticated request (state polls, downloads, uploads). */
  lastSeenAt: string;
  updatesAccepted: number;
}

/** An invite without its code: codes are shown once, when made. */
export interface AdminInvite {
  siteLabel: string;
  createdAt: string;
  /** The site that enrolled with it; null while unused. */
  siteId: string | null;
}

export interface AdminSitesResponse {
  sites: AdminSite[];
  invites: AdminInvite[];
}

export interface AdminAcceptedUpload {
  siteId: string;
  siteLabel: string;
  receivedAt: string;
  /** L2 norm of the update as received (after the site's clipping and noise); null for old rows. */
  l2Norm: number | null;
}

/** The latest refusal of one site's upload for the round, and how many times it was refused. */
export interface AdminRefusedUpload {
  siteId: string;
  siteLabel: string;
  refusedAt: string;
  statusCode: number;
  reason: string;
  attempts: number;
}

export interface AdminRound {
  round: number;
  status: "open" | "aggregated";
  /** When the round's global model (version round - 1) was made. */
  openedAt: string;
  /** When this round's aggregate (model version `round`) was made; null while open. */
  aggregatedAt: string | null;
  accepted: AdminAcceptedUpload[];
  refused: AdminRefusedUpload[];
  /** Mean L2 norm of the accepted updates with a recorded norm; null when there is none. */
  meanUpdateNorm: number | null;
}

export interface AdminRoundsResponse {
  minSites: number;
  rounds: AdminRound[];
}

/** One site's held-out evaluation of a model version, as it reported it. */
export interface AdminSiteMetrics {
  siteId: string;
  siteLabel: string;
  numExamples: number;
  loss: number;
  accuracy: number;
  reportedAt: string;
}

/** A model version's metrics across the sites that reported them. */
export interface AdminVersionMetrics {
  /** Version v is the global model after v rounds (0 = initial). */
  modelVersion: number;
  sitesReported: number;
  /** Held-out examples across the reporting sites. */
  numExamples: number;
  /** Means weighted by each site's held-out examples; null when those add up to 0. */
  meanAccuracy: number | null;
  meanLoss: number | null;
  sites: AdminSiteMetrics[];
}

export interface AdminMetricsResponse {
  /** The plan's evaluation.reportMetrics: false means sites send nothing and `versions` is empty. */
  reportMetrics: boolean;
  /** Model versions with at least one report, oldest first. */
  versions: AdminVersionMetrics[];
}

export interface AdminInviteRequest {
  siteLabel: string;
}

export interface AdminInviteResponse {
  federationId: string;
  siteLabel: string;
  code: string;
  /** The link a site opens to enrol. */
  url: string;
}

export const adminPaths = {
  federations: "/api/admin/federations",
  sites: (federationId: string) => `/api/admin/federations/${encodeURIComponent(federationId)}/sites`,
  rounds: (federationId: string) => `/api/admin/federations/${encodeURIComponent(federationId)}/rounds`,
  metrics: (federationId: string) => `/api/admin/federations/${encodeURIComponent(federationId)}/metrics`,
  invites: (federationId: string) => `/api/admin/federations/${encodeURIComponent(federationId)}/invites`,
} as const;
