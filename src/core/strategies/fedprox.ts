import { assertSameLength } from "../vector";

/**
 * FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks", eq. 2): each site minimises
 * F_k(w) + (μ/2)‖w − w_global‖², which keeps a site's local steps near the global model when sites' data
 * differ. The term lives at the site; the coordinator's aggregation is unchanged, and only passes μ on in
 * configureFit's config (proximalMu).
 *
 * The term does not depend on any example, so the site adds it after clipping and noising (DP-SGD) or to
 * every local step's gradient (site-update, whose whole update is clipped afterwards): it costs no privacy
 * and must not take up the clip norm.
 */

/** grad + μ (w − w_global), into `out` (a new vector unless given; passing `grad` updates it in place). */
export function addProximalTerm(
  grad: Float32Array,
  weights: Float32Array,
  globalWeights: Float32Array,
  mu: number,
  out: Float32Array = new Float32Array(grad.length),
): Float32Array {
  if (!(Number.isFinite(mu) && mu >= 0))
    throw new RangeError(`FedProx's proximalMu must be 0 or more, got ${mu}.`);
  assertSameLength(grad, weights, "addProximalTerm, gradient and weights");
  assertSameLength(weights, globalWeights, "addProximalTerm, weights and global weights");
  assertSameLength(grad, out, "addProximalTerm, gradient and output");
  for (let i = 0; i < grad.length; i++)
    out[i] = (grad[i] as number) + mu * ((weights[i] as number) - (globalWeights[i] as number));
  return out;
}

/** The proximal term's value (μ/2)‖w − w_global‖², for a site that reports its full local objective. */
export function proximalPenalty(weights: Float32Array, globalWeights: Float32Array, mu: number): number {
  assertSameLength(weights, globalWeights, "proximalPenalty");
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    const d = (weights[i] as number) - (globalWeights[i] as number);
    sum += d * d;
  }
  return (mu / 2) * sum;
}
