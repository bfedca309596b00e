import { codeMatcher } from "./codes";
import { matchingQuantities, quantityIn } from "./derive";
import type { Facts } from "./history";
import type { Problems } from "./problems";
import type { Label } from "./spec";
import { DAY_MS } from "./time";

/**
 * The outcome: 1 when a matching event starts in [index, index + horizonDays), else 0; or the reason the
 * patient is left out. Reads the whole record (it must look after the index), which is why it is kept
 * apart from the features, which only ever see a History.
 */
export function deriveLabel(
  label: Label,
  facts: Facts,
  index: number,
  problems: Problems,
): 0 | 1 | { excluded: string } {
  const end = index + label.horizonDays * DAY_MS;
  const inHorizon = (start: number) => start >= index && start < end;
  const match = codeMatcher(label.codes);
  if (label.kind === "condition") {
    const matching = facts.conditions.filter((c) => match(c.codes));
    // Any chance of starting before the index counts as prior: a partial date spanning the index too.
    if (label.excludePrior && matching.some((c) => c.time.start < index)) {
      return { excluded: "label condition already present before the index date" };
    }
    return matching.some((c) => inHorizon(c.time.start)) ? 1 : 0;
  }
  const hasBound = label.above !== undefined || label.below !== undefined;
  for (const obs of facts.observations) {
    if (!inHorizon(obs.time.start)) continue;
    const quantities = matchingQuantities(obs, match);
    if (quantities === undefined) continue;
    if (!hasBound) return 1;
    for (const q of quantities) {
      const value = q === undefined ? undefined : quantityIn(q, label.unit, "label", problems);
      if (value === undefined) continue;
      if (
        (label.above !== undefined && value > label.above) ||
        (label.below !== undefined && value < label.below)
      ) {
        return 1;
      }
    }
  }
  return 0;
}
