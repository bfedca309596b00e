import type { FitCheckpoint } from "../../workers/train.worker";
import type { Plan } from "../core/plan";
import type { FedwardDb } from "../store/db";
import { checkpointOf, dropCheckpoints } from "../store/round-state";

/** The round the loop is about to train, as the coordinator and the page see it. */
export interface RoundStart {
  federationId: string;
  planHash: string;
  datasetId: string;
  round: number;
  rounds: number;
  /** The global model version the round trains from. */
  modelVersion: number;
  /** The plan's epochs per round; a dp-sgd plan's steps per round (then `mechanism` is "dp-sgd"). */
  epochs: number;
  mechanism?: "dp-sgd";
  optimizer: Plan["training"]["optimizer"];
  /** The plan's number of weights. */
  count: number;
}

export interface ResumeDecision {
  /** What the training worker is told: which round to checkpoint, and where to continue from, if anywhere. */
  checkpoint: FitCheckpoint;
  /** For the clinician, in plain words, when a checkpoint was used or dropped. */
  text?: string;
}

/**
 * Decides how a round's training starts after the page was away (reload, closed tab, sleep, crash). A saved
 * checkpoint is used only for the same round, from the same global model version, plan, dataset and
 * optimizer; anything else is dropped, and the clinician is told why, in plain words. The optimizer starts
 * afresh at the saved epoch (Adam's moments are not saved). A dp-sgd round counts steps instead of epochs:
 * its checkpoint must be a dp-sgd one with the plan's steps per round.
 */
export async function resumePoint(db: FedwardDb, start: RoundStart): Promise<ResumeDecision> {
  const { federationId, round, rounds, modelVersion } = start;
  const checkpoint: FitCheckpoint = { federationId, round, modelVersion, planHash: start.planHash };
  const saved = await checkpointOf(db, federationId);
  if (!saved) return { checkpoint };
  const unit = saved.mechanism === "dp-sgd" ? "step" : "epoch";
  const kept = `${unit} ${saved.epoch} of ${saved.epochs}`;
  let dropped: string | undefined;
  if (saved.round < round) {
    dropped =
      `Round ${saved.round} closed while this site was away, so its unfinished training (${kept}) is ` +
      `dropped and nothing was sent for it. This site joins round ${round} of ${rounds} with the new global model.`;
  } else if (saved.round > round || saved.modelVersion !== modelVersion) {
    dropped =
      `The coordinator's global model is not the one this site's saved training of round ${saved.round} ` +
      `started from (version ${saved.modelVersion}, now ${modelVersion}), so that training is dropped and ` +
      `round ${round} starts over from the current model.`;
  } else if (saved.datasetId !== start.datasetId) {
    dropped = `The data were imported again after round ${round}'s training was saved, so round ${round} starts over on the new data.`;
  } else if (
    saved.planHash !== start.planHash ||
    saved.epochs !== start.epochs ||
    saved.mechanism !== start.mechanism ||
    saved.optimizer !== start.optimizer ||
    saved.weights.length !== start.count
  ) {
    dropped = `Round ${round}'s saved training was made under another plan, so round ${round} starts over.`;
  }
  if (dropped !== undefined) {
    await dropCheckpoints(db, federationId);
    return { checkpoint, text: dropped };
  }
  return {
    checkpoint: { ...checkpoint, resume: { epoch: saved.epoch, weights: saved.weights, loss: saved.loss } },
    text:
      `Round ${round} of ${rounds}: continuing the training saved on this computer after ${kept}` +
      (saved.epoch < saved.epochs ? ` (${saved.epochs - saved.epoch} left)…` : " (all done; releasing it)…"),
  };
}
