/**
 * FHIR times as spans of UTC milliseconds. A FHIR date may be partial ("2014", "2014-06") and a dateTime
 * is precise only to what it writes, so a time is the span [start, end) it could denote. Callers decide
 * which edge to trust: a feature takes a resource only when its whole span lies before the index (nothing
 * that could be after the index leaks in), an event counts when its span starts inside the horizon.
 */
export interface Span {
  start: number;
  end: number;
}

export const DAY_MS = 86_400_000;

const FHIR_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The span a FHIR date, dateTime or instant denotes, or undefined when the text is not one. */
export function parseFhirTime(text: unknown): Span | undefined {
  if (typeof text !== "string") return undefined;
  const m = FHIR_TIME.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  if (mo === undefined) return { start: Date.UTC(year, 0, 1), end: Date.UTC(year + 1, 0, 1) };
  const month = Number(mo) - 1;
  if (month > 11) return undefined;
  if (d === undefined) return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
  const day = Date.UTC(year, month, Number(d));
  // Date.UTC rolls 2014-02-30 over into March; a day that does not exist is not a time.
  if (new Date(day).getUTCDate() !== Number(d)) return undefined;
  // A date without a time has no zone in FHIR; it is read as the UTC day so every site reads it alike.
  if (h === undefined) return { start: day, end: day + DAY_MS };
  // FHIR requires a zone with a time; one left out is read as UTC rather than the machine's local zone.
  const ms = frac === undefined ? "" : `.${frac.slice(0, 3).padEnd(3, "0")}`;
  const start = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? "00"}${ms}${zone ?? "Z"}`);
  if (Number.isNaN(start)) return undefined;
  const precision = s === undefined ? 60_000 : frac === undefined ? 1000 : 1;
  return { start, end: start + precision };
}

/** UTC midnight starting a "YYYY-MM-DD" day (the spec's dates are checked days). */
export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** Whole years from birth to `at`, counting a birthday only once its month and day are reached (UTC). */
export function wholeYears(birth: number, at: number): number {
  const b = new Date(birth);
  const a = new Date(at);
  const years = a.getUTCFullYear() - b.getUTCFullYear();
  const before =
    a.getUTCMonth() < b.getUTCMonth() ||
    (a.getUTCMonth() === b.getUTCMonth() && a.getUTCDate() < b.getUTCDate());
  return before ? years - 1 : years;
}
