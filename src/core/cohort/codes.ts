import type { Coding } from "./spec";

/** Tests whether any of a resource's codings ("system|code") is one of the spec's codes. */
export type CodeMatcher = (keys: readonly string[]) => boolean;

// One matcher per codes array of a parsed spec, so a cohort of thousands builds each Set once.
const cache = new WeakMap<readonly Coding[], CodeMatcher>();

export function codeMatcher(codes: readonly Coding[]): CodeMatcher {
  let match = cache.get(codes);
  if (match === undefined) {
    const wanted = new Set(codes.map((c) => `${c.system}|${c.code}`));
    match = (keys) => keys.some((k) => wanted.has(k));
    cache.set(codes, match);
  }
  return match;
}
