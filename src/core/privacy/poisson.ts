import type { CryptoRandom } from "../random";
import { toDyadic } from "./discrete-gaussian";

/**
 * q's binary expansion after the point in 32-bit words, most significant first, for 0 < q < 1. A double is
 * dyadic (m 2^e), so the expansion ends: at most 34 words, for a subnormal q; without trailing zero words.
 */
function expansionWords(q: number): Uint32Array {
  const { mantissa, exponent } = toDyadic(q);
  const bits = -exponent; // q = mantissa / 2^bits with q < 1, so bits > 0
  const words = Math.ceil(bits / 32);
  const scaled = mantissa << BigInt(32 * words - bits); // q * 2^(32 words), an integer
  const out = new Uint32Array(words);
  for (let k = 0; k < words; k++) out[k] = Number((scaled >> BigInt(32 * (words - 1 - k))) & 0xffffffffn);
  // Trailing zero words decide nothing (a tie through them still means U >= q), so they are dropped.
  let length = words;
  while (length > 1 && out[length - 1] === 0) length--;
  return out.subarray(0, length);
}

/**
 * Poisson sampling (the sampling DP-SGD's accountant assumes, Mironov, Talwar, Zhang 2019): each of
 * 0..count-1 is included independently with probability exactly q, for any double q in [0, 1]. Each draw
 * compares a uniform U in [0, 1), read 32 random bits at a time, with q's binary expansion and stops at the
 * first word that differs: U < q exactly when the first differing bit is 1 in q, and a tie through q's last
 * word means U >= q. No float touches the decision; the expected cost is 1 + 2^-32 words per index.
 * Returns the included indices in increasing order.
 */
export function poissonSample(count: number, q: number, rng: CryptoRandom): Uint32Array {
  if (!(Number.isSafeInteger(count) && count >= 0 && count <= 2 ** 32))
    throw new RangeError(`poissonSample needs a whole count from 0 to 2^32, got ${count}.`);
  if (!(q >= 0 && q <= 1))
    throw new RangeError(
      `The sampling rate must lie in [0, 1], got ${q}. It is each unit's chance to be used.`,
    );
  if (q === 0) return new Uint32Array(0);
  if (q === 1) return Uint32Array.from({ length: count }, (_, i) => i);
  const words = expansionWords(q);
  const out = new Uint32Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < words.length; k++) {
      const u = rng.uint32();
      const w = words[k] as number;
      if (u === w) continue;
      if (u < w) out[n++] = i;
      break;
    }
  }
  return out.slice(0, n);
}
