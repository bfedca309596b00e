import { paramCount } from "../core/plan";
import type { UploadResponse } from "../core/protocol";
import type { Strategy } from "../core/strategy";
import { l2Norm } from "../core/vector";
import type { Queryable } from "./db";
import { FEDERATION_COLUMNS, type FederationRow, StorageError, toFederation } from "./records";
import { bytesToVector, vectorToBytes } from "./vector-bytes";

export interface UpdateInput {
  federationId: string;
  siteId: string;
  round: number;
  delta: Float32Array;
  numExamples: number;
}

/**
 * One upload, inside the caller's transaction. The federation row is locked first (SELECT … FOR UPDATE),
 * so two sites finishing a round at once on PostgreSQL cannot both count "one short" or both aggregate;
 * PGlite has one connection and serialises transactions anyway. Round r's aggregate is model version r.
 */
export async function recordUpdateIn(
  tx: Queryable,
  strategy: Strategy,
  input: UpdateInput,
): Promise<UploadResponse> {
  const { federationId, siteId, round, delta, numExamples } = input;
  const [row] = await tx.query<FederationRow>(
    `SELECT ${FEDERATION_COLUMNS} FROM federations WHERE id = $1 FOR UPDATE`,
    [federationId],
  );
  if (!row) throw new StorageError("not-found", `There is no federation "${federationId}".`);
  const { plan, status, currentRound } = toFederation(row);
  if (status === "done") {
    throw new StorageError(
      "conflict",
      `The federation finished all ${plan.rounds} rounds and accepts no more updates; download the final model.`,
    );
  }
  if (round !== currentRound) {
    throw new StorageError(
      "conflict",
      `Round ${round} is not open; round ${currentRound} is. Fetch the state and train on model version ` +
        `${currentRound - 1}.`,
    );
  }
  if (delta.length !== paramCount(plan)) {
    throw new StorageError(
      "invalid",
      `The plan's model has ${paramCount(plan)} weights, the update ${delta.length}.`,
    );
  }

  // ON CONFLICT instead of catching the unique violation: on PostgreSQL an error aborts the transaction.
  const inserted = await tx.query(
    `INSERT INTO updates (federation_id, round, site_id, delta, num_examples, l2_norm)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING site_id`,
    [federationId, round, siteId, vectorToBytes(delta), numExamples, l2Norm(delta)],
  );
  if (inserted.length === 0) {
    throw new StorageError(
      "conflict",
      `This site already uploaded its update for round ${round}; wait for the other sites to finish the round.`,
    );
  }

  const updates = await tx.query<{ site_id: string; delta: Uint8Array; num_examples: number }>(
    "SELECT site_id, delta, num_examples FROM updates WHERE federation_id = $1 AND round = $2 ORDER BY site_id",
    [federationId, round],
  );
  const response = { round, updatesThisRound: updates.length, minSites: plan.minSites, aggregated: false };
  if (updates.length < plan.minSites) return response;

  const [model] = await tx.query<{ weights: Uint8Array }>(
    "SELECT weights FROM models WHERE federation_id = $1 AND version = $2",
    [federationId, round - 1],
  );
  if (!model) throw new Error(`federation ${federationId} has no model version ${round - 1}`);
  const results = updates.map((u) => ({
    siteId: u.site_id,
    delta: bytesToVector(u.delta),
    numExamples: u.num_examples,
  }));
  const next = strategy.aggregateFit(round, bytesToVector(model.weights), results, []);
  await tx.query("INSERT INTO models (federation_id, version, weights) VALUES ($1, $2, $3)", [
    federationId,
    round,
    vectorToBytes(next.parameters),
  ]);
  await tx.query("UPDATE federations SET current_round = $2, status = $3 WHERE id = $1", [
    federationId,
    round + 1,
    round >= plan.rounds ? "done" : "training",
  ]);
  return { ...response, aggregated: true };
}
