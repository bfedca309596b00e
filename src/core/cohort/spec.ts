import { InputError } from "../errors";
import { z } from "../zod";

/**
 * A cohort specification: how one patient's clinical record becomes one training example. It names an
 * index date, the features measured before it, and the outcome looked for after it, in terms any FHIR (or
 * later OMOP) source can answer, so every site derives the same columns from its own records.
 *
 * Dates are calendar days in UTC; "YYYY-MM-DD" strings, checked to be real days.
 */

const isoDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date written YYYY-MM-DD")
  .refine((day) => new Date(`${day}T00:00:00Z`).toISOString().startsWith(day), "is not a real calendar day");

export const codingSchema = z
  .object({
    // The code system URI, e.g. "http://loinc.org" or "http://snomed.info/sct"; codes match only within it.
    system: z.string().min(1, "must name the code system, e.g. http://loinc.org"),
    code: z.string().min(1, "must not be empty"),
  })
  .strict();

const codes = z.array(codingSchema).min(1, "must list at least one code");

// A look-back window in whole days; the earliest day counted is index − windowDays (inclusive).
const windowDays = z.number().int().positive().max(36_500).optional();

// A UCUM unit code as written in valueQuantity.code, e.g. "kg", "mm[Hg]", "Cel".
const ucumUnit = z.string().min(1).max(32);

export const indexDateSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("fixed"), date: isoDay }).strict(),
  z
    .object({
      kind: z.literal("first-encounter"),
      // Only encounters with one of these type codes count; every encounter counts when left out.
      codes: codes.optional(),
      onOrAfter: isoDay.optional(),
    })
    .strict(),
]);

const observationStat = z.enum(["latest", "min", "max", "mean", "count"]);

export const derivedSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("age") }).strict(),
  z.object({ kind: z.literal("sex") }).strict(),
  z
    .object({
      kind: z.literal("observation"),
      codes,
      stat: observationStat,
      windowDays,
      // Convert every value to this UCUM unit; a value whose unit cannot be converted is left out.
      unit: ucumUnit.optional(),
    })
    .strict(),
  z.object({ kind: z.literal("observation-code"), codes, windowDays }).strict(),
  z.object({ kind: z.literal("condition"), codes, windowDays }).strict(),
]);

const horizonDays = z.number().int().positive().max(36_500);

export const labelSchema = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("condition"),
      codes,
      horizonDays,
      // Leave out patients who already had the condition before the index date (counted as excluded).
      excludePrior: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal("observation"),
      codes,
      horizonDays,
      // An observation is an event when its value is above `above` or below `below` (either, when both
      // are given); with neither, any matching observation is an event.
      above: z.number().finite().optional(),
      below: z.number().finite().optional(),
      unit: ucumUnit.optional(),
    })
    .strict(),
]);

export const cohortFeatureSchema = z
  .object({
    name: z.string().min(1).max(64),
    from: derivedSchema,
  })
  .strict();

export const cohortSpecSchema = z
  .object({
    indexDate: indexDateSchema,
    features: z
      .array(cohortFeatureSchema)
      .min(1, "must list at least one feature")
      .max(1000)
      .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, "feature names must be unique"),
    label: labelSchema,
  })
  .strict();

export type Coding = z.infer<typeof codingSchema>;
export type IndexDate = z.infer<typeof indexDateSchema>;
export type Derived = z.infer<typeof derivedSchema>;
export type Label = z.infer<typeof labelSchema>;
export type CohortFeature = z.infer<typeof cohortFeatureSchema>;
export type CohortSpec = z.infer<typeof cohortSpecSchema>;

/** A bad spec is the user's input to fix; it keeps InputError's name so the page shows it as such. */
export class CohortSpecError extends InputError {}

/** Validates a cohort spec, or throws one error listing every problem by its path in the spec. */
export function parseCohortSpec(input: unknown): CohortSpec {
  const result = cohortSpecSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join(".") : "(the whole spec)";
    return `${path}: ${issue.message}`;
  });
  throw new CohortSpecError(
    `The cohort spec is not valid: ${problems.join("; ")}. Fix these fields and load it again.`,
  );
}
