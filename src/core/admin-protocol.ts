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
  /** When the admin revoked the site (its token stopped working then); null while it takes part. */
  revokedAt: string | null;
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

/** How a round closed: every active site sent; quorum (a plan without a deadline); its deadline; the admin. */
export type RoundCloseReason = "all-reported" | "quorum" | "deadline" | "admin";

export interface AdminSiteRef {
  siteId: string;
  siteLabel: string;
}

export interface AdminRound {
  round: number;
  status: "open" | "aggregated";
  /** The round's deadline (moved by extensions or the admin); null without one or for rounds before deadlines. */
  deadline: string | null;
  /** How often the deadline moved on because fewer than minSites had sent by then. */
  deadlineExtensions: number;
  /** Null while open, and for rounds closed before the coordinator recorded why. */
  closeReason: RoundCloseReason | null;
  /** The open round only: the active sites that have not sent their update yet ([] for closed rounds). */
  waitingFor: AdminSiteRef[];
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
  /** The quorum: the plan's minSites unless the admin changed it. */
  minSites: number;
  /** Enrolled sites that are not revoked: those a round waits for. */
  sitesActive: number;
  /** The coordinator's clock when it answered, for the time left in the open round. */
  serverTime: string;
  rounds: AdminRound[];
}

/** Moves the open round's deadline (it must be in the future). */
export interface AdminDeadlineRequest {
  deadline: string;
}

/** Changes the quorum of this and later rounds (the plan's minSites stays as the sites approved it). */
export interface AdminMinSitesRequest {
  minSites: number;
}

/** Where the federation stands after an admin action, and the round it closed, if it closed one. */
export interface AdminRoundActionResponse {
  status: FederationStatus;
  currentRound: number;
  minSites: number;
  /** The open round's deadline after the action; null without one or once done. */
  deadline: string | null;
  closed: { round: number; modelVersion: number; reason: RoundCloseReason } | null;
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
  closeRound: (federationId: string, round: number) =>
    `/api/admin/federations/${encodeURIComponent(federationId)}/rounds/${round}/close`,
  roundDeadline: (federationId: string, round: number) =>
    `/api/admin/federations/${encodeURIComponent(federationId)}/rounds/${round}/deadline`,
  minSites: (federationId: string) => `/api/admin/federations/${encodeURIComponent(federationId)}/min-sites`,
  revokeSite: (federationId: string, siteId: string) =>
    `/api/admin/federations/${encodeURIComponent(federationId)}/sites/${encodeURIComponent(siteId)}/revoke`,
} as const;
