import type { EvaluateAggregate, EvaluateResult, FitFailure } from "./types";

/**
 * Flower's weighted_loss_avg: loss and each metric averaged with the sites' held-out sizes as weights. A
 * metric enters only from the sites that report it; no report (or only zero-size ones) gives no loss, not NaN.
 */
export function aggregateEvaluations(
  _serverRound: number,
  results: EvaluateResult[],
  failures: FitFailure[],
): EvaluateAggregate {
  // The route validates reports; a count or loss that is not a finite number still never turns the mean to NaN.
  const valid = results.filter(
    (r) => Number.isFinite(r.numExamples) && r.numExamples >= 0 && Number.isFinite(r.loss),
  );
  const numExamples = valid.reduce((n, r) => n + r.numExamples, 0);
  const metrics: Record<string, number> = { sites: results.length, failures: failures.length, numExamples };
  if (numExamples === 0) return { loss: undefined, metrics };
  const loss = valid.reduce((sum, r) => sum + r.numExamples * r.loss, 0) / numExamples;
  const totals = new Map<string, { sum: number; weight: number }>();
  for (const r of valid)
    for (const [name, value] of Object.entries(r.metrics)) {
      if (!Number.isFinite(value) || name in metrics) continue;
      const t = totals.get(name) ?? { sum: 0, weight: 0 };
      t.sum += r.numExamples * value;
      t.weight += r.numExamples;
      totals.set(name, t);
    }
  for (const [name, t] of totals) metrics[name] = t.sum / t.weight;
  return { loss, metrics };
}
