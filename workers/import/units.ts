import { type Plan, privacyUnit } from "../../src/core/plan";
import type { Split } from "../../src/store/db";

/**
 * Units of privacy at import: the examples of one patient (rows of a CSV with csv.patientColumn, DICOM files
 * of one PatientID) share a unit, so DP-SGD samples and clips them together. The identifier is hashed where
 * it is read and only the hash reaches the numbering, which lives in the import worker's memory; what is
 * stored is a sequential number per unit (src/store/db.ts ShardRow.unit), nothing derived from the value.
 */

/**
 * Whether the plan's examples are grouped into patients at import (csv.patientColumn, DICOM PatientID), so
 * that shards carry unit numbers. A cohort has one example per patient already; PNG/JPEG files and CSV rows
 * without a patient column are each their own unit.
 */
export function groupsByPatient(plan: Plan): boolean {
  return privacyUnit(plan) === "patient" && !plan.cohort;
}

/** A 64-bit hash of an identifier, as 16 hex digits: made only by unitKey, so a raw id cannot pass as one. */
export type UnitKey = string & { readonly __unitKey: unique symbol };

const encoder = new TextEncoder();

/**
 * Two 32-bit multiply-xorshift lanes over the UTF-8 bytes (cyrb53's construction, both lanes kept whole):
 * 64 bits, so two patients of a site share a key with probability about n^2 / 2^65 (3e-8 for 10^6
 * patients). A shared key would make two patients one unit; nothing else depends on it.
 */
export function unitKey(value: string): UnitKey {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (const byte of encoder.encode(value)) {
    h1 = Math.imul(h1 ^ byte, 2654435761);
    h2 = Math.imul(h2 ^ byte, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hex = (h: number) => (h >>> 0).toString(16).padStart(8, "0");
  return `${hex(h2)}${hex(h1)}` as UnitKey;
}

/** A holdout key from a unit key, so that every example of a unit falls on the same side of the split. */
export function unitHoldoutKey(key: UnitKey): number {
  return Number.parseInt(key.slice(8), 16);
}

/**
 * Numbers units 0, 1, 2, ... in order of first appearance and remembers each one's split. An example without
 * a key is a unit of its own.
 */
export class UnitNumbering {
  private readonly seen = new Map<UnitKey, { unit: number; split: Split }>();
  private next = 0;
  /** Units first seen in each split: every unit is in exactly one. */
  readonly units: Record<Split, number> = { train: 0, holdout: 0 };

  /** The unit of an example and its split: the unit's split if it was seen before, else `split`. */
  assign(key: UnitKey | undefined, split: Split): { unit: number; split: Split } {
    const known = key === undefined ? undefined : this.seen.get(key);
    if (known) return known;
    const fresh = { unit: this.next++, split };
    this.units[split]++;
    if (key !== undefined) this.seen.set(key, fresh);
    return fresh;
  }
}
