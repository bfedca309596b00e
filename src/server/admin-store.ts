import type {
  AdminFederation,
  AdminInvite,
  AdminRound,
  AdminRoundsResponse,
  AdminSite,
  AdminSiteMetrics,
  AdminSitesResponse,
  AdminVersionMetrics,
} from "../core/admin-protocol";
import type { Db } from "./db";
import { FEDERATION_COLUMNS, type FederationRow, toFederation } from "./records";
import { hashToken, newToken, tokenMatchesHash } from "./secrets";

/** What the admin API reads, and the admin token. Read-only over the sites' tables. */
export class AdminStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Makes the admin token if there is none and returns it (the only time it exists in clear); returns
   * undefined when one exists. ON CONFLICT: two coordinators starting at once on one PostgreSQL make one.
   */
  async ensureAdminToken(): Promise<string | undefined> {
    const token = newToken();
    const made = await this.db.query(
      "INSERT INTO admin_token (id, token_hash) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING id",
      [hashToken(token)],
    );
    return made.length > 0 ? token : undefined;
  }

  /** Replaces the admin token (the old one stops working at once) and returns the new one. */
  async replaceAdminToken(): Promise<string> {
    const token = newToken();
    await this.db.query(
      `INSERT INTO admin_token (id, token_hash) VALUES (1, $1)
       ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = now()`,
      [hashToken(token)],
    );
    return token;
  }

  async isAdminToken(token: string): Promise<boolean> {
    const [row] = await this.db.query<{ token_hash: string }>("SELECT token_hash FROM admin_token");
    return row !== undefined && tokenMatchesHash(token, row.token_hash);
  }

  async listFederations(): Promise<AdminFederation[]> {
    const rows = await this.db.query<FederationRow & { sites: number; invites_open: number }>(
      `SELECT ${FEDERATION_COLUMNS},
              (SELECT count(*)::int FROM sites s WHERE s.federation_id = f.id) AS sites,
              (SELECT count(*)::int FROM invites i WHERE i.federation_id = f.id AND i.site_id IS NULL)
                AS invites_open
       FROM federations f ORDER BY created_at, id`,
    );
    return rows.map((row) => {
      const federation = toFederation(row);
      return {
        id: federation.id,
        title: federation.title,
        planHash: federation.planHash,
        status: federation.status,
        currentRound: federation.currentRound,
        rounds: federation.plan.rounds,
        minSites: federation.minSites,
        sitesEnrolled: row.sites,
        invitesOpen: row.invites_open,
        createdAt: federation.createdAt.toISOString(),
      };
    });
  }

  async listSites(federationId: string): Promise<AdminSitesResponse> {
    const sites = await this.db.query<{
      id: string;
      label: string;
      enrolled_at: Date;
      last_seen_at: Date;
      revoked_at: Date | null;
      updates: number;
    }>(
      `SELECT id, label, enrolled_at, last_seen_at, revoked_at,
              (SELECT count(*)::int FROM updates u WHERE u.site_id = s.id) AS updates
       FROM sites s WHERE federation_id = $1 ORDER BY enrolled_at, id`,
      [federationId],
    );
    const invites = await this.db.query<{ site_label: string; created_at: Date; site_id: string | null }>(
      "SELECT site_label, created_at, site_id FROM invites WHERE federation_id = $1 ORDER BY created_at, site_label",
      [federationId],
    );
    return {
      sites: sites.map(
        (s): AdminSite => ({
          id: s.id,
          label: s.label,
          enrolledAt: s.enrolled_at.toISOString(),
          lastSeenAt: s.last_seen_at.toISOString(),
          updatesAccepted: s.updates,
          revokedAt: s.revoked_at?.toISOString() ?? null,
        }),
      ),
      invites: invites.map(
        (i): AdminInvite => ({
          siteLabel: i.site_label,
          createdAt: i.created_at.toISOString(),
          siteId: i.site_id,
        }),
      ),
    };
  }

  /**
   * The sites' reports per model version, oldest first, with the means weighted by held-out examples: the
   * mean over all reporting sites' held-out examples pooled, as if one site had evaluated them all.
   */
  async listMetrics(federationId: string): Promise<AdminVersionMetrics[]> {
    const rows = await this.db.query<{
      model_version: number;
      site_id: string;
      label: string;
      num_examples: number;
      loss: number;
      accuracy: number;
      reported_at: Date;
    }>(
      `SELECT m.model_version, m.site_id, s.label, m.num_examples, m.loss, m.accuracy, m.reported_at
       FROM site_metrics m JOIN sites s ON s.id = m.site_id
       WHERE m.federation_id = $1 ORDER BY m.model_version, s.label, m.site_id`,
      [federationId],
    );
    const byVersion = new Map<number, AdminSiteMetrics[]>();
    for (const r of rows) {
      const list = byVersion.get(r.model_version) ?? [];
      list.push({
        siteId: r.site_id,
        siteLabel: r.label,
        numExamples: r.num_examples,
        loss: r.loss,
        accuracy: r.accuracy,
        reportedAt: r.reported_at.toISOString(),
      });
      byVersion.set(r.model_version, list);
    }
    return [...byVersion].map(([modelVersion, sites]) => {
      const numExamples = sites.reduce((n, s) => n + s.numExamples, 0);
      const mean = (value: (s: AdminSiteMetrics) => number) =>
        numExamples === 0 ? null : sites.reduce((sum, s) => sum + s.numExamples * value(s), 0) / numExamples;
      return {
        modelVersion,
        sitesReported: sites.length,
        numExamples,
        meanAccuracy: mean((s) => s.accuracy),
        meanLoss: mean((s) => s.loss),
        sites,
      };
    });
  }

  /**
   * Rounds 1 … the open one (or the last, once done), oldest first, with the quorum, the sites a round waits
   * for, and which of them the open round still waits for. The caller settles the open round first.
   */
  async roundsOf(federation: {
    id: string;
    currentRound: number;
    minSites: number;
    plan: { rounds: number };
  }): Promise<AdminRoundsResponse> {
    const [active] = await this.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM sites WHERE federation_id = $1 AND revoked_at IS NULL",
      [federation.id],
    );
    return {
      minSites: federation.minSites,
      sitesActive: active?.n ?? 0,
      serverTime: new Date(this.now()).toISOString(),
      rounds: await this.listRounds(federation.id, federation.currentRound, federation.plan.rounds),
    };
  }

  /** Rounds 1 … the open one (or the last, once done), oldest first. */
  async listRounds(federationId: string, currentRound: number, rounds: number): Promise<AdminRound[]> {
    const models = await this.db.query<{ version: number; created_at: Date }>(
      "SELECT version, created_at FROM models WHERE federation_id = $1 ORDER BY version",
      [federationId],
    );
    const accepted = await this.db.query<{
      round: number;
      site_id: string;
      label: string;
      received_at: Date;
      l2_norm: number | null;
    }>(
      `SELECT u.round, u.site_id, s.label, u.received_at, u.l2_norm
       FROM updates u JOIN sites s ON s.id = u.site_id
       WHERE u.federation_id = $1 ORDER BY u.round, u.received_at, u.site_id`,
      [federationId],
    );
    const refused = await this.db.query<{
      round: number;
      site_id: string;
      label: string;
      refused_at: Date;
      status_code: number;
      reason: string;
      attempts: number;
    }>(
      `SELECT r.round, r.site_id, s.label, r.refused_at, r.status_code, r.reason, r.attempts
       FROM refused_updates r JOIN sites s ON s.id = r.site_id
       WHERE r.federation_id = $1 ORDER BY r.round, r.refused_at, r.site_id`,
      [federationId],
    );
    const lifecycle = await this.db.query<{
      round: number;
      deadline: Date | null;
      extensions: number;
      close_reason: AdminRound["closeReason"];
    }>("SELECT round, deadline, extensions, close_reason FROM rounds WHERE federation_id = $1", [
      federationId,
    ]);
    const waiting = await this.db.query<{ id: string; label: string }>(
      `SELECT id, label FROM sites s WHERE federation_id = $1 AND revoked_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM updates u WHERE u.federation_id = $1 AND u.round = $2 AND u.site_id = s.id)
       ORDER BY enrolled_at, id`,
      [federationId, currentRound],
    );
    const rowOf = new Map(lifecycle.map((r) => [r.round, r]));
    const madeAt = new Map(models.map((m) => [m.version, m.created_at]));
    const last = Math.min(currentRound, rounds);
    const out: AdminRound[] = [];
    for (let round = 1; round <= last; round++) {
      const uploads = accepted.filter((u) => u.round === round);
      const norms = uploads.map((u) => u.l2_norm).filter((n): n is number => n !== null);
      const aggregatedAt = madeAt.get(round);
      out.push({
        round,
        status: aggregatedAt === undefined ? "open" : "aggregated",
        deadline: rowOf.get(round)?.deadline?.toISOString() ?? null,
        deadlineExtensions: rowOf.get(round)?.extensions ?? 0,
        closeReason: rowOf.get(round)?.close_reason ?? null,
        waitingFor:
          aggregatedAt === undefined ? waiting.map((w) => ({ siteId: w.id, siteLabel: w.label })) : [],
        openedAt: (madeAt.get(round - 1) as Date).toISOString(),
        aggregatedAt: aggregatedAt?.toISOString() ?? null,
        accepted: uploads.map((u) => ({
          siteId: u.site_id,
          siteLabel: u.label,
          receivedAt: u.received_at.toISOString(),
          l2Norm: u.l2_norm,
        })),
        refused: refused
          .filter((r) => r.round === round)
          .map((r) => ({
            siteId: r.site_id,
            siteLabel: r.label,
            refusedAt: r.refused_at.toISOString(),
            statusCode: r.status_code,
            reason: r.reason,
            attempts: r.attempts,
          })),
        meanUpdateNorm: norms.length === 0 ? null : norms.reduce((a, b) => a + b, 0) / norms.length,
      });
    }
    return out;
  }
}
