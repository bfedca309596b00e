/**
 * Holdout assignment from the example's line number alone, with no random seed: re-importing the same
 * file gives exactly the same split, so examples evaluated on before are never trained on after a
 * re-import. (Adding or reordering rows moves the lines, and so the split, of the rows after them.)
 */
export function isHoldout(line: number, holdoutFraction: number): boolean {
  return mix32(line) / 2 ** 32 < holdoutFraction;
}

/** splitmix32-style: a golden-ratio step, then MurmurHash3's fmix32 finaliser, so neighbouring lines scatter. */
export function mix32(n: number): number {
  let h = Math.imul(n, 0x9e3779b9);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
