/**
 * A small table of UCUM units (https://ucum.org/ucum) that vital signs and common labs arrive in, enough
 * to bring one feature's values to one unit. Not a UCUM parser: a unit outside the table converts only to
 * itself, and the caller reports it. Each unit maps to a base of its dimension by `base = value * factor
 * + offset`; the offset is non-zero only for temperatures (affine, not linear).
 */
interface UnitDef {
  dimension: string;
  factor: number;
  offset?: number;
}

const TABLE: Record<string, UnitDef> = {
  // mass, base g; [lb_av] and [oz_av] are the avoirdupois pound and ounce (UCUM, customary units).
  g: { dimension: "mass", factor: 1 },
  kg: { dimension: "mass", factor: 1000 },
  mg: { dimension: "mass", factor: 0.001 },
  "[lb_av]": { dimension: "mass", factor: 453.59237 },
  "[oz_av]": { dimension: "mass", factor: 28.349523125 },
  // length, base m; [in_i] and [ft_i] are the international inch and foot.
  m: { dimension: "length", factor: 1 },
  cm: { dimension: "length", factor: 0.01 },
  mm: { dimension: "length", factor: 0.001 },
  "[in_i]": { dimension: "length", factor: 0.0254 },
  "[ft_i]": { dimension: "length", factor: 0.3048 },
  // pressure, base Pa; UCUM defines m[Hg] as 133.3220 kPa, so mm[Hg] is 133.3220 Pa.
  Pa: { dimension: "pressure", factor: 1 },
  kPa: { dimension: "pressure", factor: 1000 },
  "mm[Hg]": { dimension: "pressure", factor: 133.322 },
  // dimensionless, base 1.
  "1": { dimension: "ratio", factor: 1 },
  "%": { dimension: "ratio", factor: 0.01 },
  // mass concentration, base g/L; a decilitre is 0.1 L.
  "g/L": { dimension: "mass-concentration", factor: 1 },
  "mg/L": { dimension: "mass-concentration", factor: 0.001 },
  "g/dL": { dimension: "mass-concentration", factor: 10 },
  "mg/dL": { dimension: "mass-concentration", factor: 0.01 },
  // body mass index, base kg/m2.
  "kg/m2": { dimension: "mass-per-area", factor: 1 },
  // temperature, base K: K = Cel + 273.15; K = ([degF] + 459.67) * 5/9.
  K: { dimension: "temperature", factor: 1 },
  Cel: { dimension: "temperature", factor: 1, offset: 273.15 },
  "[degF]": { dimension: "temperature", factor: 5 / 9, offset: 459.67 * (5 / 9) },
};

// A Map, so unit text from a resource such as "constructor" never finds an Object prototype member.
const UNITS = new Map(Object.entries(TABLE));

/**
 * The value in unit `to`, or undefined when `from` cannot be converted to it (a unit outside the table, or
 * another dimension). The same unit text on both sides is always the identity.
 */
export function convertUnit(value: number, from: string, to: string): number | undefined {
  if (from === to) return value;
  const a = UNITS.get(from);
  const b = UNITS.get(to);
  if (a === undefined || b === undefined || a.dimension !== b.dimension) return undefined;
  const base = value * a.factor + (a.offset ?? 0);
  return (base - (b.offset ?? 0)) / b.factor;
}

/** Whether `unit` is in the table (for messages: an unknown unit versus a wrong dimension). */
export function knownUnit(unit: string): boolean {
  return UNITS.has(unit);
}
