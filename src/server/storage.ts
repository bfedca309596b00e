import type { AdminRoundActionResponse } from "../core/admin-protocol";
import { initialWeights } from "../core/model-format";
import { type Plan, planHash } from "../core/plan";
import type {
  EnrollResponse,
  FederationState,
  MetricsReport,
  MetricsResponse,
  UploadResponse,
} from "../core/protocol";
import { FedAvgUnweighted, type Strategy } from "../core/strategy";
import { AdminStore } from "./admin-store";
import type { Db } from "./db";
import {
  FEDERATION_COLUMNS,
  type Federation,
  type FederationRow,
  type Invite,
  type Site,
  StorageError,
  toFederation,
} from "./records";
import { type RoundAction, roundActionIn } from "./round-actions";
import { lockFederation, openRoundIn, openRoundOf, recordUpdateIn, type Settled, settleIn } from "./rounds";
import { hashToken, newId, newInviteCode, newToken, normaliseInviteCode } from "./secrets";
import { siteStateIn } from "./site-state";
import { bytesToVector, vectorToBytes } from "./vector-bytes";

export { type Federation, type Invite, type Site, StorageError } from "./records";

export interface StorageOptions {
  /**
   * The clock round deadlines are read on, in ms since the epoch (Date.now by default); tests move it.
   * Coordinators sharing one PostgreSQL should keep their clocks in sync (NTP): each closes a round whose
   * stored deadline its own clock has passed.
   */
  now?: () => number;
}

export class Storage {
  /** The admin token and the admin API's reads. */
  readonly admin: AdminStore;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly strategy: Strategy = new FedAvgUnweighted(),
    options: StorageOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.admin = new AdminStore(db, this.now);
  }

  /** Creates a federation, its initial model (version 0) and one single-use invite per site label. */
  async createFederation(
    plan: Plan,
    siteLabels: string[],
  ): Promise<{ federation: Federation; invites: Invite[] }> {
    if (siteLabels.length < plan.minSites) {
      throw new StorageError(
        "invalid",
        `The plan needs ${plan.minSites} sites per round but only ${siteLabels.length} invites were asked for; ` +
          "ask for at least as many invites as plan.minSites.",
      );
    }
    const id = newId(plan.id);
    const hash = await planHash(plan);
    const weights = vectorToBytes(initialWeights(plan));
    const invites: Invite[] = siteLabels.map((siteLabel) => ({
      code: newInviteCode(),
      federationId: id,
      siteLabel,
      siteId: null,
    }));
    const federation = await this.db.transaction(async (tx) => {
      const [row] = await tx.query<FederationRow>(
        `INSERT INTO federations (id, title, plan, plan_hash) VALUES ($1, $2, $3, $4) RETURNING ${FEDERATION_COLUMNS}`,
        [id, plan.title, JSON.stringify(plan), hash],
      );
      await tx.query("INSERT INTO models (federation_id, version, weights) VALUES ($1, 0, $2)", [
        id,
        weights,
      ]);
      await openRoundIn(tx, toFederation(row as FederationRow), 1, this.now());
      for (const invite of invites) {
        await tx.query("INSERT INTO invites (code, federation_id, site_label) VALUES ($1, $2, $3)", [
          invite.code,
          id,
          invite.siteLabel,
        ]);
      }
      return toFederation(row as FederationRow);
    });
    return { federation, invites };
  }

  async getFederation(id: string): Promise<Federation | undefined> {
    const [row] = await this.db.query<FederationRow>(
      `SELECT ${FEDERATION_COLUMNS} FROM federations WHERE id = $1`,
      [id],
    );
    return row && toFederation(row);
  }

  async listFederations(): Promise<Federation[]> {
    const rows = await this.db.query<FederationRow>(
      `SELECT ${FEDERATION_COLUMNS} FROM federations ORDER BY created_at, id`,
    );
    return rows.map(toFederation);
  }

  async listInvites(federationId?: string): Promise<Invite[]> {
    const rows = await this.db.query<{
      code: string;
      federation_id: string;
      site_label: string;
      site_id: string | null;
    }>(
      `SELECT code, federation_id, site_label, site_id FROM invites
       WHERE $1::text IS NULL OR federation_id = $1 ORDER BY created_at, site_label`,
      [federationId ?? null],
    );
    return rows.map((r) => ({
      code: r.code,
      federationId: r.federation_id,
      siteLabel: r.site_label,
      siteId: r.site_id,
    }));
  }

  /** One more single-use invite for a federation that is still training (the admin page makes these). */
  async createInvite(federationId: string, siteLabel: string): Promise<Invite> {
    const federation = await this.getFederation(federationId);
    if (!federation) throw new StorageError("not-found", `There is no federation "${federationId}".`);
    if (federation.status === "done") {
      throw new StorageError(
        "conflict",
        `The federation finished all ${federation.plan.rounds} rounds; a new site could not train in it.`,
      );
    }
    const code = newInviteCode();
    await this.db.query("INSERT INTO invites (code, federation_id, site_label) VALUES ($1, $2, $3)", [
      code,
      federationId,
      siteLabel,
    ]);
    return { code, federationId, siteLabel, siteId: null };
  }

  /**
   * Keeps the latest refusal of a site's upload for a round, for the admin page. One row per site and
   * round, so a site retrying a bad upload cannot grow the table.
   */
  async recordRefusal(
    federationId: string,
    siteId: string,
    round: number,
    statusCode: number,
    reason: string,
  ): Promise<void> {
    await this.db.query(
      `INSERT INTO refused_updates (federation_id, round, site_id, status_code, reason) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (federation_id, round, site_id) DO UPDATE SET status_code = EXCLUDED.status_code,
         reason = EXCLUDED.reason, refused_at = now(), attempts = refused_updates.attempts + 1`,
      [federationId, round, siteId, statusCode, reason],
    );
  }

  /**
   * Keeps a site's evaluation of a model version; a repeat (a reload evaluates the same version again)
   * replaces the earlier report, so each site counts once per version. A version the federation has not
   * made is a conflict: the insert selects from models, so it writes nothing then. (xmax is 0 on a row
   * just inserted and not on one the upsert updated.)
   */
  async recordMetrics(federationId: string, siteId: string, report: MetricsReport): Promise<MetricsResponse> {
    const { modelVersion, numExamples, loss, accuracy } = report;
    const rows = await this.db.query<{ replaced: boolean }>(
      `INSERT INTO site_metrics (federation_id, model_version, site_id, num_examples, loss, accuracy)
       SELECT federation_id, version, $3::text, $4::integer, $5::double precision, $6::double precision
       FROM models WHERE federation_id = $1 AND version = $2
       ON CONFLICT (federation_id, model_version, site_id) DO UPDATE SET num_examples = EXCLUDED.num_examples,
         loss = EXCLUDED.loss, accuracy = EXCLUDED.accuracy, reported_at = now()
       RETURNING NOT (xmax = 0) AS replaced`,
      [federationId, modelVersion, siteId, numExamples, loss, accuracy],
    );
    const [row] = rows;
    if (!row) {
      throw new StorageError(
        "conflict",
        `Model version ${modelVersion} does not exist in this federation; report metrics only for a version the site downloaded.`,
      );
    }
    return { modelVersion, replaced: row.replaced };
  }

  /** Turns a single-use invite into a site with a fresh bearer token (returned once, stored hashed). */
  async enroll(typedCode: string): Promise<EnrollResponse> {
    const code = normaliseInviteCode(typedCode);
    const unknown = new StorageError(
      "not-found",
      `No invite has the code "${typedCode}"; check it for typos.`,
    );
    if (code === undefined) throw unknown;
    const token = newToken();
    const siteId = newId("site");
    const { federationId, siteLabel } = await this.db.transaction(async (tx) => {
      const [invite] = await tx.query<{ federation_id: string; site_label: string; site_id: string | null }>(
        "SELECT federation_id, site_label, site_id FROM invites WHERE code = $1 FOR UPDATE",
        [code],
      );
      if (!invite) throw unknown;
      if (invite.site_id !== null) {
        throw new StorageError(
          "conflict",
          `The invite ${code} has already been used; each invite enrols one site. Ask the coordinator for a new one.`,
        );
      }
      await tx.query("INSERT INTO sites (id, federation_id, label, token_hash) VALUES ($1, $2, $3, $4)", [
        siteId,
        invite.federation_id,
        invite.site_label,
        hashToken(token),
      ]);
      await tx.query("UPDATE invites SET site_id = $1 WHERE code = $2", [siteId, code]);
      return { federationId: invite.federation_id, siteLabel: invite.site_label };
    });
    const federation = (await this.getFederation(federationId)) as Federation;
    return { federationId, siteId, siteLabel, token, plan: federation.plan, planHash: federation.planHash };
  }

  /** The site holding `token`, unless the admin revoked it. */
  async authenticate(token: string): Promise<Site | undefined> {
    const [row] = await this.db.query<{ id: string; federation_id: string; label: string }>(
      "SELECT id, federation_id, label FROM sites WHERE token_hash = $1 AND revoked_at IS NULL",
      [hashToken(token)],
    );
    return row && { id: row.id, federationId: row.federation_id, label: row.label };
  }

  /** When the site holding `token` was revoked; undefined for a token that is unknown or still valid. */
  async revokedAt(token: string): Promise<Date | undefined> {
    const [row] = await this.db.query<{ revoked_at: Date }>(
      "SELECT revoked_at FROM sites WHERE token_hash = $1 AND revoked_at IS NOT NULL",
      [hashToken(token)],
    );
    return row?.revoked_at;
  }

  async touchSite(siteId: string): Promise<void> {
    await this.db.query("UPDATE sites SET last_seen_at = now() WHERE id = $1", [siteId]);
  }

  /**
   * The federation as one site sees it, its open round brought up to date first (a deadline that passed is
   * acted on here, not only by the timer), with the coordinator's receipt for the site's upload of
   * `receiptFor` (default: its latest).
   */
  async getState(federationId: string, siteId: string, receiptFor?: number): Promise<FederationState> {
    const now = this.now();
    const { federation, open } = await this.settle(federationId, now);
    return siteStateIn(this.db, federation, open, siteId, receiptFor, now);
  }

  /**
   * The federation with its open round up to `now`. A plain read while the round's deadline is ahead (state
   * polls must not queue behind uploads for the federation's lock); the locked settling otherwise.
   */
  async settle(federationId: string, now = this.now()): Promise<Settled> {
    const [due] = await this.db.query<{ status: string; round: number | null; deadline: Date | null }>(
      `SELECT f.status, r.round, r.deadline FROM federations f
       LEFT JOIN rounds r ON r.federation_id = f.id AND r.round = f.current_round WHERE f.id = $1`,
      [federationId],
    );
    if (!due) throw new StorageError("not-found", `There is no federation "${federationId}".`);
    const current = due.status === "training" && due.round !== null;
    if (!current || (due.deadline !== null && due.deadline.getTime() <= now)) {
      return this.db.transaction(async (tx) =>
        settleIn(tx, this.strategy, await lockFederation(tx, federationId), now),
      );
    }
    const federation = (await this.getFederation(federationId)) as Federation;
    return { federation, open: await openRoundOf(this.db, federation) };
  }

  /**
   * Closes (or extends) every round whose deadline has passed, each in its own locked transaction; the
   * round clock calls this. Returns how many rounds it looked at.
   */
  async settleDueRounds(): Promise<number> {
    const now = this.now();
    const due = await this.db.query<{ federation_id: string }>(
      `SELECT r.federation_id FROM rounds r JOIN federations f ON f.id = r.federation_id AND f.current_round = r.round
       WHERE f.status = 'training' AND r.closed_at IS NULL AND r.deadline <= $1 ORDER BY r.deadline`,
      [new Date(now)],
    );
    for (const { federation_id } of due) await this.settle(federation_id, now);
    return due.length;
  }

  /** An admin action on the federation's rounds or sites (round-actions.ts), in one locked transaction. */
  roundAction(federationId: string, action: RoundAction): Promise<AdminRoundActionResponse> {
    const now = this.now();
    return this.db.transaction((tx) => roundActionIn(tx, this.strategy, federationId, action, now));
  }

  async getModel(federationId: string, version: number): Promise<Float32Array | undefined> {
    const [row] = await this.db.query<{ weights: Uint8Array }>(
      "SELECT weights FROM models WHERE federation_id = $1 AND version = $2",
      [federationId, version],
    );
    return row && bytesToVector(row.weights);
  }

  async getModelVersions(federationId: string): Promise<number[]> {
    const rows = await this.db.query<{ version: number }>(
      "SELECT version FROM models WHERE federation_id = $1 ORDER BY version",
      [federationId],
    );
    return rows.map((r) => r.version);
  }

  /**
   * Adds a site's delta to the open round and, when that closes the round, aggregates it into the next
   * model version (see rounds.ts). One transaction: nothing is half-written. A refusal is thrown after the
   * transaction committed what settling the round did (a round that reached its deadline stays closed).
   */
  async recordUpdate(
    federationId: string,
    siteId: string,
    round: number,
    delta: Float32Array,
    numExamples: number,
  ): Promise<UploadResponse> {
    const now = this.now();
    const outcome = await this.db.transaction((tx) =>
      recordUpdateIn(tx, this.strategy, { federationId, siteId, round, delta, numExamples }, now),
    );
    if ("refused" in outcome) throw outcome.refused;
    return outcome.response;
  }
}
