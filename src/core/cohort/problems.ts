/**
 * Problems found while deriving one patient's example, counted by message. Messages are built only from
 * the spec (feature names, units, codes) and from unit codes, never from identifiers, dates or free text
 * of the record: they are stored and shown to people who may not see the record.
 */
export class Problems {
  private readonly counts = new Map<string, number>();

  add(message: string): void {
    this.counts.set(message, (this.counts.get(message) ?? 0) + 1);
  }

  list(): string[] {
    return [...this.counts].map(([message, n]) => (n === 1 ? message : `${message} (${n} times)`));
  }
}

// A unit as written in a resource is shown only when it looks like a unit code, not like text.
const UNIT_LIKE = /^[A-Za-z0-9[\]{}/.%*^_'-]{1,24}$/;

/** A resource's unit text, quoted when it looks like a unit code and described otherwise. */
export function showUnit(unit: string | undefined): string {
  if (unit === undefined) return "no unit";
  return UNIT_LIKE.test(unit) ? `unit '${unit}'` : "a unit written as free text";
}
