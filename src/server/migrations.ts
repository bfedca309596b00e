import type { Db } from "./db";

/**
 * Schema changes, in order, never edited once released: a database records which versions it has and
 * gets only the missing ones. The SQL is plain PostgreSQL that PGlite runs unchanged.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "federations, invites, sites, models, updates",
    sql: `
      CREATE TABLE federations (
        id text PRIMARY KEY,
        title text NOT NULL,
        plan jsonb NOT NULL,
        plan_hash text NOT NULL,
        current_round integer NOT NULL DEFAULT 1 CHECK (current_round >= 1),
        status text NOT NULL DEFAULT 'training' CHECK (status IN ('training', 'done')),
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE sites (
        id text PRIMARY KEY,
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        label text NOT NULL,
        token_hash text NOT NULL UNIQUE,
        enrolled_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX sites_federation_id ON sites (federation_id);
      CREATE TABLE invites (
        code text PRIMARY KEY,
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        site_label text NOT NULL,
        site_id text UNIQUE REFERENCES sites (id),
        -- clock_timestamp(), not now(): invites made in one transaction keep their order for printing.
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX invites_federation_id ON invites (federation_id);
      CREATE TABLE models (
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        version integer NOT NULL CHECK (version >= 0),
        weights bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (federation_id, version)
      );
      CREATE TABLE updates (
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        round integer NOT NULL CHECK (round >= 1),
        site_id text NOT NULL REFERENCES sites (id),
        delta bytea NOT NULL,
        num_examples integer NOT NULL CHECK (num_examples >= 0),
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (federation_id, round, site_id)
      );
    `,
  },
  {
    version: 2,
    name: "admin token, update norms, refused updates",
    sql: `
      -- One row at most: the coordinator's admin token, stored as its SHA-256 only.
      CREATE TABLE admin_token (
        id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        token_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      -- The L2 norm of each update as received, so the admin page need not read every delta back.
      -- NULL for updates stored before this migration.
      ALTER TABLE updates ADD COLUMN l2_norm double precision;
      -- The latest refusal of a site's upload for a round (one row per site and round, however often it
      -- retries), so an admin can see why a site is missing from a round.
      CREATE TABLE refused_updates (
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        round integer NOT NULL CHECK (round >= 1),
        site_id text NOT NULL REFERENCES sites (id),
        status_code integer NOT NULL,
        reason text NOT NULL,
        attempts integer NOT NULL DEFAULT 1,
        refused_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (federation_id, round, site_id)
      );
    `,
  },
  {
    version: 3,
    name: "site metrics",
    sql: `
      -- Each site's evaluation of a global model version on its held-out split, sent only under a plan with
      -- evaluation.reportMetrics. One row per site and model version: a repeat replaces it.
      CREATE TABLE site_metrics (
        federation_id text NOT NULL,
        model_version integer NOT NULL,
        site_id text NOT NULL REFERENCES sites (id),
        num_examples integer NOT NULL CHECK (num_examples >= 0),
        loss double precision NOT NULL CHECK (loss >= 0),
        accuracy double precision NOT NULL CHECK (accuracy >= 0 AND accuracy <= 1),
        reported_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (federation_id, model_version, site_id),
        FOREIGN KEY (federation_id, model_version) REFERENCES models (federation_id, version) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 4,
    name: "round lifecycle: deadlines, running sums, quorum overrides, revoked sites",
    sql: `
      -- One row per federation and round, made when the round opens. The deadline is stored (not derived
      -- from the clock of whichever coordinator asks) so it survives a restart and is the same for several
      -- coordinators on one PostgreSQL. NULL deadline: the plan has none and the round closes at quorum.
      CREATE TABLE rounds (
        federation_id text NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
        round integer NOT NULL CHECK (round >= 1),
        opened_at timestamptz NOT NULL,
        deadline timestamptz,
        extensions integer NOT NULL DEFAULT 0 CHECK (extensions >= 0),
        updates integer NOT NULL DEFAULT 0 CHECK (updates >= 0),
        -- The float64 little-endian sum of the round's accepted deltas (each times its weight: 1, or its
        -- numExamples for an example-weighted strategy), added to inside each upload's transaction, so that
        -- closing the round never reads the updates again; NULL before the first and once the round closed
        -- (its aggregate is the model then). weight and num_examples are the running totals beside it.
        sum bytea,
        weight double precision NOT NULL DEFAULT 0,
        num_examples double precision NOT NULL DEFAULT 0,
        closed_at timestamptz,
        close_reason text CHECK (close_reason IN ('all-reported', 'quorum', 'deadline', 'admin')),
        PRIMARY KEY (federation_id, round)
      );
      -- The sum is rewritten by every upload and float64 noise does not compress: do not try.
      ALTER TABLE rounds ALTER COLUMN sum SET STORAGE EXTERNAL;
      CREATE INDEX rounds_due ON rounds (deadline) WHERE closed_at IS NULL AND deadline IS NOT NULL;
      -- The admin's change to the plan's minSites (NULL: the plan's).
      ALTER TABLE federations ADD COLUMN min_sites integer CHECK (min_sites >= 1);
      -- A revoked site's token stops working and the site no longer counts among those a round waits for.
      ALTER TABLE sites ADD COLUMN revoked_at timestamptz;
      -- An update keeps its vector only for a strategy that needs every one at the close (FedAvg needs the
      -- sum only); its site, norm and time stay for the admin page and the receipts.
      ALTER TABLE updates ALTER COLUMN delta DROP NOT NULL;
    `,
  },
];

/** unique_violation (on pg_type's index), duplicate_table, duplicate_object ("type … already exists"). */
const duplicateCatalogEntry = new Set(["23505", "42P07", "42710"]);

/** Applies the missing migrations, each in its own transaction; returns the versions it applied. */
export async function runMigrations(db: Db): Promise<number[]> {
  const createLedger = `
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )
  `;
  try {
    await db.exec(createLedger);
  } catch (error) {
    // IF NOT EXISTS is not atomic on PostgreSQL: when two coordinators start at once on an empty database,
    // the one that loses the race fails on the system catalogs once the winner has committed the table.
    // The table exists by then, so the second try is a no-op.
    if (!duplicateCatalogEntry.has((error as { code?: unknown }).code as string)) throw error;
    await db.exec(createLedger);
  }
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      // Two coordinators starting against one PostgreSQL must not both apply a migration: the table lock
      // makes the second wait, then see the row the first inserted.
      await tx.exec("LOCK TABLE schema_migrations IN EXCLUSIVE MODE");
      const rows = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}
