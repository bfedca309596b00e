import type { RoundRow } from "../store/db";

/** One global model version as this site measured it on its held-out data (version 0: the starting model). */
export interface VersionPoint {
  version: number;
  accuracy?: number;
  loss?: number;
  /** The local training loss of round `version` (absent for version 0). */
  trainLoss?: number;
}

/** Version 0 is round 1's "before"; version r is round r's "after" (the rounds table holds both). */
export function modelHistory(rows: readonly RoundRow[]): VersionPoint[] {
  const byRound = [...rows].sort((a, b) => a.round - b.round);
  const out: VersionPoint[] = [];
  const first = byRound.find((r) => r.round === 1);
  if (first?.accuracyBefore !== undefined) {
    out.push({ version: 0, accuracy: first.accuracyBefore, loss: first.lossBefore });
  }
  for (const r of byRound) {
    if (r.accuracyAfter === undefined && r.trainLoss === undefined) continue;
    out.push({ version: r.round, accuracy: r.accuracyAfter, loss: r.lossAfter, trainLoss: r.trainLoss });
  }
  return out;
}
