import { type Plan, parsePlan } from "../core/plan";
import type { FederationStatus } from "../core/protocol";

/** The rows storage hands out, and the refusals it can make. */
export interface Federation {
  id: string;
  title: string;
  plan: Plan;
  planHash: string;
  /** The round open for updates; rounds + 1 once done. */
  currentRound: number;
  status: FederationStatus;
  /** The quorum of a round: the plan's minSites unless the admin changed it. */
  minSites: number;
  createdAt: Date;
}

export interface Invite {
  code: string;
  federationId: string;
  siteLabel: string;
  /** The site that used the invite; null while it is unused. */
  siteId: string | null;
}

export interface Site {
  id: string;
  federationId: string;
  label: string;
}

/** A refusal the caller can act on; the app maps `reason` to an HTTP status. */
export class StorageError extends Error {
  override name = "StorageError";
  constructor(
    readonly reason: "not-found" | "conflict" | "invalid",
    message: string,
  ) {
    super(message);
  }
}

export type FederationRow = {
  id: string;
  title: string;
  plan: unknown;
  plan_hash: string;
  current_round: number;
  status: FederationStatus;
  min_sites: number | null;
  created_at: Date;
};

export const FEDERATION_COLUMNS = "id, title, plan, plan_hash, current_round, status, min_sites, created_at";

export function toFederation(row: FederationRow): Federation {
  const plan = parsePlan(row.plan, `plan stored for federation ${row.id}`);
  return {
    id: row.id,
    title: row.title,
    // A row is an edge too: a plan edited by hand in the database must still be a valid plan.
    plan,
    planHash: row.plan_hash,
    currentRound: row.current_round,
    status: row.status,
    minSites: row.min_sites ?? plan.minSites,
    createdAt: row.created_at,
  };
}
