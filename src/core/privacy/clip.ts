import { l2Norm } from "../vector";

/**
 * Clips the global L2 norm over every tensor of the update at once (the vector is the concatenation of
 * all layers): v <- v * min(1, C / ||v||), with the norm accumulated in float64 (Abadi et al. 2016, Alg. 1;
 * McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models", Alg. 1 flat clipping).
 */
export function clipToNorm(v: ArrayLike<number>, clipNorm: number): { clipped: Float64Array; norm: number } {
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be positive, got ${clipNorm}`);
  const norm = l2Norm(v);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  const clipped = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) clipped[i] = (v[i] as number) * scale;
  return { clipped, norm };
}
