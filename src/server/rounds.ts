import { paramCount, roundDeadlineMs } from "../core/plan";
import type { UploadReceipt, UploadResponse } from "../core/protocol";
import {
  type AggregateResult,
  addToSum,
  type FitFailure,
  type RunningSum,
  type Strategy,
} from "../core/strategy";
import { l2Norm } from "../core/vector";
import type { Queryable } from "./db";
import {
  FEDERATION_COLUMNS,
  type Federation,
  type FederationRow,
  StorageError,
  toFederation,
} from "./records";
import { bytesToSum, bytesToVector, sumToBytes, vectorToBytes } from "./vector-bytes";

/**
 * The round state machine. A round opens with a deadline from the plan (or none); every update that arrives
 * while it is open counts. It closes when every active site (enrolled, not revoked) has sent, or at its
 * deadline if at least minSites have; a deadline that passes short of minSites moves on by the plan's
 * extension. Every step runs inside a transaction that holds the federation row (SELECT … FOR UPDATE), so
 * several coordinators on one PostgreSQL close a round exactly once; the caller decides when to look (each
 * upload, each request touching the round, and a timer: see round-clock.ts).
 */

export type CloseReason = "all-reported" | "quorum" | "deadline" | "admin";

/** The open round as its row says. Times in ms since the epoch. */
export interface OpenRound {
  round: number;
  openedAt: number;
  deadline: number | null;
  extensions: number;
  updates: number;
}

export type RoundStep =
  | { kind: "wait" }
  | { kind: "close"; reason: CloseReason }
  /** The deadline passed short of minSites: it moves on by whole extensions until it is ahead of now. */
  | { kind: "extend"; deadline: number; steps: number }
  /** An admin's deadline passed short of minSites on a plan without one: the plan's rule (quorum) again. */
  | { kind: "drop-deadline" };

/** What the open round does next, given who has sent and the time. Pure, so the rule is tested alone. */
export function nextStep(
  round: Pick<OpenRound, "updates" | "deadline">,
  activeSites: number,
  minSites: number,
  now: number,
  extendMs: number | undefined,
): RoundStep {
  const quorum = round.updates >= minSites;
  if (quorum && round.updates >= activeSites) return { kind: "close", reason: "all-reported" };
  if (round.deadline === null) return quorum ? { kind: "close", reason: "quorum" } : { kind: "wait" };
  if (round.deadline > now) return { kind: "wait" };
  if (quorum) return { kind: "close", reason: "deadline" };
  if (extendMs === undefined) return { kind: "drop-deadline" };
  const steps = Math.floor((now - round.deadline) / extendMs) + 1;
  return { kind: "extend", deadline: round.deadline + steps * extendMs, steps };
}

/** A mean-based strategy (FedAvg, weighted or not, and the server optimizers over the mean). */
interface SumStrategy extends Strategy {
  readonly needsEveryUpdate: boolean;
  readonly weighted?: boolean;
  aggregateSum(
    serverRound: number,
    global: Float32Array,
    sum: RunningSum,
    failures: FitFailure[],
  ): AggregateResult;
}

/**
 * A strategy that aggregates from a running sum (src/core/strategies: aggregateSum, the same result as
 * aggregateFit over every update, bit for bit): the round keeps the float64 sum of its deltas and no
 * vector. A strategy that needs every update (median, trimmed mean, or one without aggregateSum) gets the
 * vectors, kept with each update, at the close.
 */
export function sumStrategyOf(strategy: Strategy): SumStrategy | undefined {
  const candidate = strategy as Partial<SumStrategy>;
  return typeof candidate.aggregateSum === "function" && candidate.needsEveryUpdate === false
    ? (strategy as SumStrategy)
    : undefined;
}

export async function lockFederation(tx: Queryable, federationId: string): Promise<Federation> {
  const [row] = await tx.query<FederationRow>(
    `SELECT ${FEDERATION_COLUMNS} FROM federations WHERE id = $1 FOR UPDATE`,
    [federationId],
  );
  if (!row) throw new StorageError("not-found", `There is no federation "${federationId}".`);
  return toFederation(row);
}

export async function activeSites(tx: Queryable, federationId: string): Promise<number> {
  const [row] = await tx.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM sites WHERE federation_id = $1 AND revoked_at IS NULL",
    [federationId],
  );
  return row?.n ?? 0;
}

type RoundRow = {
  round: number;
  opened_at: Date;
  deadline: Date | null;
  extensions: number;
  updates: number;
};

const toOpenRound = (r: RoundRow): OpenRound => ({
  round: r.round,
  openedAt: r.opened_at.getTime(),
  deadline: r.deadline === null ? null : r.deadline.getTime(),
  extensions: r.extensions,
  updates: r.updates,
});

/** Opens `round` of a federation: its row, with the plan's deadline counted from `now`. */
export async function openRoundIn(tx: Queryable, federation: Federation, round: number, now: number) {
  const deadline = roundDeadlineMs(federation.plan);
  await tx.query("INSERT INTO rounds (federation_id, round, opened_at, deadline) VALUES ($1, $2, $3, $4)", [
    federation.id,
    round,
    new Date(now),
    deadline === undefined ? null : new Date(now + deadline.roundMs),
  ]);
}

/**
 * The open round's row. A round opened before the rounds table existed gets one here, from its model's
 * time and the updates already stored (their vectors summed once).
 */
export async function openRoundOf(tx: Queryable, federation: Federation): Promise<OpenRound> {
  const { id, currentRound } = federation;
  const select = () =>
    tx.query<RoundRow>(
      "SELECT round, opened_at, deadline, extensions, updates FROM rounds WHERE federation_id = $1 AND round = $2",
      [id, currentRound],
    );
  const [row] = await select();
  if (row) return toOpenRound(row);
  const [model] = await tx.query<{ created_at: Date }>(
    "SELECT created_at FROM models WHERE federation_id = $1 AND version = $2",
    [id, currentRound - 1],
  );
  if (!model) throw new Error(`federation ${id} has no model version ${currentRound - 1}`);
  const stored = await tx.query<{ delta: Uint8Array | null }>(
    "SELECT delta FROM updates WHERE federation_id = $1 AND round = $2",
    [id, currentRound],
  );
  // Every update before migration 4 was summed unweighted (FedAvg was the only strategy then).
  const sum = new Float64Array(paramCount(federation.plan));
  for (const { delta } of stored) if (delta) addInto(sum, bytesToVector(delta));
  const [examples] = await tx.query<{ n: number }>(
    "SELECT coalesce(sum(num_examples), 0)::float8 AS n FROM updates WHERE federation_id = $1 AND round = $2",
    [id, currentRound],
  );
  const opened = model.created_at.getTime();
  const deadline = roundDeadlineMs(federation.plan);
  await tx.query(
    `INSERT INTO rounds (federation_id, round, opened_at, deadline, updates, sum, weight, num_examples)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      id,
      currentRound,
      new Date(opened),
      deadline === undefined ? null : new Date(opened + deadline.roundMs),
      stored.length,
      stored.length === 0 ? null : sumToBytes(sum),
      stored.length,
      examples?.n ?? 0,
    ],
  );
  return toOpenRound((await select())[0] as RoundRow);
}

export interface Settled {
  federation: Federation;
  /** The round open after settling; undefined once the federation is done. */
  open: OpenRound | undefined;
  /** The round this call closed, if it closed one. */
  closed?: { round: number; reason: CloseReason };
}

/**
 * Brings a locked federation's open round up to `now`: closes it or moves its deadline when the rule says
 * so. At most one close per call: the next round has just opened and waits for its own updates.
 */
export async function settleIn(
  tx: Queryable,
  strategy: Strategy,
  federation: Federation,
  now: number,
): Promise<Settled> {
  if (federation.status === "done") return { federation, open: undefined };
  const open = await openRoundOf(tx, federation);
  const step = nextStep(
    open,
    await activeSites(tx, federation.id),
    federation.minSites,
    now,
    roundDeadlineMs(federation.plan)?.extendMs,
  );
  if (step.kind === "wait") return { federation, open };
  if (step.kind === "close") return closeIn(tx, strategy, federation, open, step.reason, now);
  const deadline = step.kind === "extend" ? new Date(step.deadline) : null;
  const steps = step.kind === "extend" ? step.steps : 0;
  await tx.query(
    "UPDATE rounds SET deadline = $3, extensions = extensions + $4 WHERE federation_id = $1 AND round = $2",
    [federation.id, open.round, deadline, steps],
  );
  return {
    federation,
    open: { ...open, deadline: deadline?.getTime() ?? null, extensions: open.extensions + steps },
  };
}

/**
 * Closes the open round: its aggregate becomes model version `round`, and the next round opens (or the
 * federation is done). Inside the caller's transaction, with the federation row locked.
 */
export async function closeIn(
  tx: Queryable,
  strategy: Strategy,
  federation: Federation,
  open: OpenRound,
  reason: CloseReason,
  now: number,
): Promise<Settled> {
  const { id, plan } = federation;
  const { round } = open;
  const [model] = await tx.query<{ weights: Uint8Array }>(
    "SELECT weights FROM models WHERE federation_id = $1 AND version = $2",
    [id, round - 1],
  );
  if (!model) throw new Error(`federation ${id} has no model version ${round - 1}`);
  const global = bytesToVector(model.weights);
  const failures = await failuresOf(tx, id, round);
  const onSum = sumStrategyOf(strategy);
  const next = onSum
    ? onSum.aggregateSum(round, global, await runningSumOf(tx, id, open, global.length), failures).parameters
    : strategy.aggregateFit(round, global, await resultsOf(tx, id, round), failures).parameters;
  await tx.query("INSERT INTO models (federation_id, version, weights) VALUES ($1, $2, $3)", [
    id,
    round,
    vectorToBytes(next),
  ]);
  await tx.query(
    "UPDATE rounds SET closed_at = $3, close_reason = $4, sum = NULL WHERE federation_id = $1 AND round = $2",
    [id, round, new Date(now), reason],
  );
  const done = round >= plan.rounds;
  await tx.query("UPDATE federations SET current_round = $2, status = $3 WHERE id = $1", [
    id,
    round + 1,
    done ? "done" : "training",
  ]);
  const after: Federation = { ...federation, currentRound: round + 1, status: done ? "done" : "training" };
  if (done) return { federation: after, open: undefined, closed: { round, reason } };
  await openRoundIn(tx, after, round + 1, now);
  return { federation: after, open: await openRoundOf(tx, after), closed: { round, reason } };
}

/** The round's running sum as the strategy takes it. */
async function runningSumOf(
  tx: Queryable,
  federationId: string,
  open: OpenRound,
  numWeights: number,
): Promise<RunningSum> {
  const [row] = await tx.query<{ sum: Uint8Array | null; weight: number; num_examples: number }>(
    "SELECT sum, weight, num_examples FROM rounds WHERE federation_id = $1 AND round = $2",
    [federationId, open.round],
  );
  return {
    sum: row?.sum ? bytesToSum(row.sum) : new Float64Array(numWeights),
    weight: row?.weight ?? 0,
    sites: open.updates,
    numExamples: row?.num_examples ?? 0,
  };
}

/** Every update of the round with its vector, for a strategy that needs them all, in site order. */
async function resultsOf(tx: Queryable, federationId: string, round: number) {
  const updates = await tx.query<{ site_id: string; delta: Uint8Array | null; num_examples: number }>(
    "SELECT site_id, delta, num_examples FROM updates WHERE federation_id = $1 AND round = $2 ORDER BY site_id",
    [federationId, round],
  );
  return updates.map((u) => {
    if (!u.delta) {
      throw new Error(
        `round ${round}: the update of ${u.site_id} was summed without its vector, which this strategy needs`,
      );
    }
    return { siteId: u.site_id, delta: bytesToVector(u.delta), numExamples: u.num_examples };
  });
}

/** The active sites that sent no update for the round: the strategy's failures. */
async function failuresOf(tx: Queryable, federationId: string, round: number): Promise<FitFailure[]> {
  const missing = await tx.query<{ id: string }>(
    `SELECT id FROM sites s WHERE federation_id = $1 AND revoked_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM updates u WHERE u.federation_id = $1 AND u.round = $2 AND u.site_id = s.id)
     ORDER BY id`,
    [federationId, round],
  );
  return missing.map((s) => ({ siteId: s.id, reason: "sent no update before the round closed" }));
}

function addInto(sum: Float64Array, delta: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (delta[i] as number);
}

const closedHow: Record<CloseReason, string> = {
  "all-reported": "once every enrolled site had sent its update",
  quorum: "as soon as enough sites had sent theirs (the plan sets no deadline)",
  deadline: "at its deadline",
  admin: "early, by the federation's admin",
};

/** Why an update for a round that is no longer open was not counted, in words the site can act on. */
async function lateMessage(
  tx: Queryable,
  federation: Federation,
  siteId: string,
  round: number,
): Promise<string> {
  const { id, currentRound } = federation;
  const next = `Round ${currentRound} is open; fetch the state and train on model version ${currentRound - 1}.`;
  // A retry of an update the round already counted (its reply was lost): say so, it is not a late one.
  const mine = await tx.query(
    "SELECT 1 FROM updates WHERE federation_id = $1 AND round = $2 AND site_id = $3",
    [id, round, siteId],
  );
  if (mine.length > 0) {
    return `Round ${round} is not open: this site's update for it was counted in model version ${round}. ${next}`;
  }
  const [row] = await tx.query<{ closed_at: Date | null; close_reason: CloseReason | null }>(
    "SELECT closed_at, close_reason FROM rounds WHERE federation_id = $1 AND round = $2",
    [id, round],
  );
  if (!row?.closed_at || !row.close_reason) return `Round ${round} is not open; ${next}`;
  return (
    `Round ${round} is not open: it closed ${closedHow[row.close_reason]} at ${row.closed_at.toISOString()}, ` +
    `before this update arrived, so the update was not counted. ${next}`
  );
}

export interface UpdateInput {
  federationId: string;
  siteId: string;
  round: number;
  delta: Float32Array;
  numExamples: number;
}

/**
 * A refusal is returned, not thrown, so that the caller's transaction still commits what settling the
 * round did before the refusal (a round closed at its deadline stays closed).
 */
export type UploadOutcome = { response: UploadResponse } | { refused: StorageError };

/**
 * One upload, inside the caller's transaction. The federation row is locked first, so two sites finishing
 * a round at once on PostgreSQL cannot both count "one short" or both aggregate; PGlite has one connection
 * and serialises transactions anyway. The delta is added into the round's running sum: the cost of an
 * upload does not depend on how many came before it. Round r's aggregate is model version r.
 */
export async function recordUpdateIn(
  tx: Queryable,
  strategy: Strategy,
  input: UpdateInput,
  now: number,
): Promise<UploadOutcome> {
  const { federationId, siteId, round, delta, numExamples } = input;
  const settled = await settleIn(tx, strategy, await lockFederation(tx, federationId), now);
  const { federation, open } = settled;
  const { plan, currentRound } = federation;
  const refuse = (reason: StorageError["reason"], message: string): UploadOutcome => ({
    refused: new StorageError(reason, message),
  });
  if (!open) {
    return refuse(
      "conflict",
      `The federation finished all ${plan.rounds} rounds and accepts no more updates; download the final model.`,
    );
  }
  if (round > currentRound) {
    return refuse(
      "conflict",
      `Round ${round} is not open; round ${currentRound} is. Fetch the state and train on model version ` +
        `${currentRound - 1}.`,
    );
  }
  if (round < currentRound) return refuse("conflict", await lateMessage(tx, federation, siteId, round));
  if (delta.length !== paramCount(plan)) {
    return refuse("invalid", `The plan's model has ${paramCount(plan)} weights, the update ${delta.length}.`);
  }

  const onSum = sumStrategyOf(strategy);
  // ON CONFLICT instead of catching the unique violation: on PostgreSQL an error aborts the transaction.
  const [inserted] = await tx.query<{ received_at: Date }>(
    `INSERT INTO updates (federation_id, round, site_id, delta, num_examples, l2_norm)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING received_at`,
    [federationId, round, siteId, onSum ? null : vectorToBytes(delta), numExamples, l2Norm(delta)],
  );
  if (!inserted) {
    return refuse(
      "conflict",
      `This site already uploaded its update for round ${round}; wait for the other sites to finish the round.`,
    );
  }
  if (onSum) {
    // O(d): the sum only, never the round's earlier updates.
    const acc = await runningSumOf(tx, federationId, open, delta.length);
    addToSum(acc, { siteId, delta, numExamples }, onSum.weighted === true, round);
    await tx.query(
      `UPDATE rounds SET updates = updates + 1, sum = $3, weight = $4, num_examples = $5
       WHERE federation_id = $1 AND round = $2`,
      [federationId, round, sumToBytes(acc.sum), acc.weight, acc.numExamples],
    );
  } else {
    await tx.query("UPDATE rounds SET updates = updates + 1 WHERE federation_id = $1 AND round = $2", [
      federationId,
      round,
    ]);
  }
  const counted = { ...open, updates: open.updates + 1 };
  const receipt: UploadReceipt = {
    round,
    status: "accepted",
    modelVersion: null,
    at: inserted.received_at.toISOString(),
    statusCode: 202,
    reason: null,
  };
  const response = {
    round,
    updatesThisRound: counted.updates,
    minSites: federation.minSites,
    aggregated: false,
    receipt,
  };
  const step = nextStep(
    counted,
    await activeSites(tx, federationId),
    federation.minSites,
    now,
    roundDeadlineMs(plan)?.extendMs,
  );
  if (step.kind !== "close") return { response };
  await closeIn(tx, strategy, federation, counted, step.reason, now);
  return {
    response: {
      ...response,
      aggregated: true,
      receipt: { ...receipt, status: "counted", modelVersion: round },
    },
  };
}
