import { z } from "zod";
import { type CohortSpec, derivedSchema, indexDateSchema, labelSchema } from "./cohort/spec";
import { sha256Hex } from "./sha256";

/**
 * The federation plan: everything a site needs to train the shared model, fixed before the first round.
 * Normalisation constants live here (not computed per site) so every site maps raw values the same way
 * and no site's statistics leak through its preprocessing.
 */
const numberFeature = z
  .object({
    name: z.string().min(1),
    // A CSV plan reads the feature from this column; a cohort plan (FHIR, OMOP) derives it `from` records.
    column: z.string().min(1).optional(),
    from: derivedSchema.optional(),
    type: z.literal("number"),
    mean: z.number().finite(),
    std: z.number().finite().positive(),
    // A missing cell: "skip" (the default) leaves the example out and reports it; "mean" imputes the plan's
    // mean (0 after normalisation); "zero" imputes the raw value 0. Imputations are counted per feature.
    missing: z.enum(["skip", "mean", "zero"]).optional(),
  })
  .strict();

const categoryFeature = z
  .object({
    name: z.string().min(1),
    column: z.string().min(1).optional(),
    from: derivedSchema.optional(),
    type: z.literal("category"),
    // One model input per level (one-hot), in this order; a value outside the levels is a problem.
    levels: z
      .array(z.string().min(1))
      .min(2)
      .max(256)
      .refine((levels) => new Set(levels).size === levels.length, "levels must be unique"),
    // A missing cell: "skip" (the default) leaves the example out; "zeros" gives all inputs 0 (counted).
    missing: z.enum(["skip", "zeros"]).optional(),
  })
  .strict();

const featureSchema = z.discriminatedUnion("type", [numberFeature, categoryFeature]);

/**
 * How CSV files for this plan are laid out, where a header row naming the columns is not enough. Optional,
 * and left out of the plan (and its hash) when every field is the default.
 */
const csvSchema = z
  .object({
    // For files without a header row: every column's name, in file order (extra columns too).
    columns: z.array(z.string().min(1)).min(1).max(100000).optional(),
    // Lines before the header (or the first data row), e.g. scikit-learn's "569,30,malignant,benign".
    skipLines: z.number().int().min(0).max(1000).optional(),
    // "auto" (the default) decides per file from its first data row, so sites in different locales can
    // share one plan; "," reads 1,5 as 1.5.
    decimal: z.enum([".", ",", "auto"]).optional(),
  })
  .strict();

const planShape = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and dashes (at most 63)"),
    title: z.string().min(1).max(200),
    task: z.literal("binary-classification").default("binary-classification"),
    features: z.array(featureSchema).min(1).max(4096),
    csv: csvSchema.optional(),
    // A cohort plan: examples are patients of a FHIR or OMOP export, from this index date (see cohort/spec.ts).
    cohort: z.object({ indexDate: indexDateSchema }).strict().optional(),
    label: z
      .object({
        // A CSV plan's label column, or a cohort plan's outcome criterion after the index date.
        column: z.string().min(1).optional(),
        criterion: labelSchema.optional(),
        positive: z.string().min(1),
        negative: z.string().min(1),
      })
      .strict(),
    model: z
      .object({
        type: z.literal("mlp"),
        hidden: z.array(z.number().int().positive().max(4096)).max(8),
        activation: z.enum(["relu", "tanh", "sigmoid", "elu"]),
      })
      .strict(),
    training: z
      .object({
        epochs: z.number().int().positive().max(100),
        batchSize: z.number().int().positive().max(4096),
        optimizer: z.enum(["sgd", "adam"]),
        learningRate: z.number().positive().max(10),
      })
      .strict(),
    privacy: z
      .object({
        clipNorm: z.number().positive().finite(),
        // Zero would send the clipped delta without noise: no privacy at all, so a plan cannot ask for it.
        noiseMultiplier: z.number().positive().finite(),
        delta: z.number().positive().lt(1),
        // Each site stops taking part before its own releases in this federation would spend more than
        // this, at the plan's delta (src/core/privacy/budget.ts).
        epsilonBudget: z.number().positive().finite(),
      })
      .strict(),
    evaluation: z
      .object({ holdoutFraction: z.number().gt(0).lt(1) })
      .strict()
      .default({ holdoutFraction: 0.2 }),
    rounds: z.number().int().positive().max(10000),
    minSites: z.number().int().positive().max(1000),
  })
  .strict();

export const planSchema = planShape.superRefine((plan, ctx) => {
  if (plan.cohort) checkCohortPlan(plan, ctx);
  else checkCsvPlan(plan, ctx);
  // A feature's name and its column must each be unique.
  for (const key of ["name", "column"] as const) {
    const seen = new Set<string>();
    plan.features.forEach((f, i) => {
      if (f[key] === undefined) return;
      if (seen.has(f[key])) {
        ctx.addIssue({
          code: "custom",
          path: ["features", i, key],
          message: `${key} "${f[key]}" is used by two features`,
        });
      }
      seen.add(f[key]);
    });
  }
  const columns = new Set(plan.features.map((f) => f.column).filter((c) => c !== undefined));
  if (plan.label.column !== undefined && columns.has(plan.label.column)) {
    ctx.addIssue({
      code: "custom",
      path: ["label", "column"],
      message: "the label column is also a feature",
    });
  }
  const listed = plan.csv?.columns;
  if (listed) {
    if (new Set(listed).size !== listed.length) {
      ctx.addIssue({ code: "custom", path: ["csv", "columns"], message: "column names must be unique" });
    }
    for (const column of [...columns, plan.label.column ?? ""]) {
      if (!listed.includes(column)) {
        ctx.addIssue({
          code: "custom",
          path: ["csv", "columns"],
          message: `does not list "${column}", which the features or the label read`,
        });
      }
    }
  }
  if (plan.label.positive === plan.label.negative) {
    ctx.addIssue({
      code: "custom",
      path: ["label", "negative"],
      message: "must differ from label.positive",
    });
  }
});

export type Plan = z.infer<typeof planSchema>;

type PlanShape = z.infer<typeof planShape>;

/** A CSV plan names a column for every feature and for the label, and derives nothing. */
function checkCsvPlan(plan: PlanShape, ctx: z.RefinementCtx): void {
  plan.features.forEach((f, i) => {
    if (f.column === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["features", i, "column"],
        message: "is required (the CSV column)",
      });
    if (f.from !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["features", i, "from"],
        message: "needs a cohort: add plan.cohort with an index date, or read the feature from a column",
      });
  });
  if (plan.label.column === undefined)
    ctx.addIssue({ code: "custom", path: ["label", "column"], message: "is required (the CSV column)" });
  if (plan.label.criterion !== undefined)
    ctx.addIssue({ code: "custom", path: ["label", "criterion"], message: "needs plan.cohort" });
}

/**
 * A cohort plan derives every feature `from` a patient's records and its label from a `criterion`, never
 * from CSV columns; sex and coded observations are categories, everything else a number.
 */
function checkCohortPlan(plan: PlanShape, ctx: z.RefinementCtx): void {
  plan.features.forEach((f, i) => {
    if (f.from === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["features", i, "from"],
        message: "is required in a cohort plan",
      });
      return;
    }
    if (f.column !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["features", i, "column"],
        message: "a cohort plan reads no columns",
      });
    const categorical = f.from.kind === "sex" || f.from.kind === "observation-code";
    if (categorical !== (f.type === "category"))
      ctx.addIssue({
        code: "custom",
        path: ["features", i, "type"],
        message: `must be "${categorical ? "category" : "number"}" for a feature from ${f.from.kind}`,
      });
  });
  if (plan.label.criterion === undefined)
    ctx.addIssue({ code: "custom", path: ["label", "criterion"], message: "is required in a cohort plan" });
  if (plan.label.column !== undefined)
    ctx.addIssue({ code: "custom", path: ["label", "column"], message: "a cohort plan reads no columns" });
  if (plan.csv !== undefined)
    ctx.addIssue({ code: "custom", path: ["csv"], message: "a cohort plan reads FHIR or OMOP, not CSV" });
}

/** The cohort engine's spec for a cohort plan (undefined for a CSV plan). */
export function cohortSpecOf(plan: Plan): CohortSpec | undefined {
  if (!plan.cohort || !plan.label.criterion) return undefined;
  return {
    indexDate: plan.cohort.indexDate,
    features: plan.features.map((f) => ({ name: f.name, from: f.from as NonNullable<Feature["from"]> })),
    label: plan.label.criterion,
  };
}

/** A CSV plan's column for a feature or the label; validation guarantees one, so a miss is our bug. */
export function csvColumn(owner: { column?: string | undefined }): string {
  if (owner.column === undefined)
    throw new Error("A CSV column was asked of a cohort plan; this is a bug in fedward.");
  return owner.column;
}

export class PlanError extends Error {
  override name = "PlanError";
}

/** Validates an untrusted plan; the error names every bad field by its path, e.g. `privacy.clipNorm`. */
export function parsePlan(input: unknown, source = "plan"): Plan {
  const result = planSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join(".") : "(the whole plan)";
    return `${path}: ${issue.message}`;
  });
  throw new PlanError(
    `The ${source} is not a valid federation plan. Fix these fields: ${problems.join("; ")}.`,
  );
}

/** JSON with object keys sorted, so the hash does not depend on key order in the file. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 of the canonical JSON of the validated plan: what a site shows and approves. */
export function planHash(plan: Plan): Promise<string> {
  return sha256Hex(new TextEncoderLite().encode(canonicalJson(plan)));
}

/** UTF-8 encoder that needs no DOM or Node typings (core compiles against ES2022 only). */
class TextEncoderLite {
  encode(text: string): Uint8Array {
    const Encoder = (globalThis as unknown as { TextEncoder: new () => { encode(s: string): Uint8Array } })
      .TextEncoder;
    return new Encoder().encode(text);
  }
}

export type Feature = Plan["features"][number];

/** Model inputs of one feature: 1 for a number, one per level for a category (one-hot). */
export function featureWidth(feature: Feature): number {
  return feature.type === "category" ? feature.levels.length : 1;
}

/** Number of model inputs: the width of every example's x. */
export function inputWidth(plan: Plan): number {
  return plan.features.reduce((sum, f) => sum + featureWidth(f), 0);
}

/** Shapes of the model's weights in the order tfjs `model.getWeights()` returns them. */
export function weightShapes(plan: Plan): number[][] {
  const sizes = [inputWidth(plan), ...plan.model.hidden, 1];
  const shapes: number[][] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    shapes.push([sizes[i] as number, sizes[i + 1] as number], [sizes[i + 1] as number]);
  }
  return shapes;
}

export function paramCount(plan: Plan): number {
  return weightShapes(plan).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
}
