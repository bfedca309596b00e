import { z } from "zod";
import { sha256Hex } from "./sha256";

/**
 * The federation plan: everything a site needs to train the shared model, fixed before the first round.
 * Normalisation constants live here (not computed per site) so every site maps raw values the same way
 * and no site's statistics leak through its preprocessing.
 */
const featureSchema = z
  .object({
    name: z.string().min(1),
    column: z.string().min(1),
    type: z.literal("number"),
    mean: z.number().finite(),
    std: z.number().finite().positive(),
  })
  .strict();

export const planSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and dashes (at most 63)"),
    title: z.string().min(1).max(200),
    task: z.literal("binary-classification").default("binary-classification"),
    features: z.array(featureSchema).min(1).max(4096),
    label: z
      .object({
        column: z.string().min(1),
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
  .strict()
  .superRefine((plan, ctx) => {
    // A feature's name and its column must each be unique.
    for (const key of ["name", "column"] as const) {
      const seen = new Set<string>();
      plan.features.forEach((f, i) => {
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
    const columns = new Set(plan.features.map((f) => f.column));
    if (columns.has(plan.label.column)) {
      ctx.addIssue({
        code: "custom",
        path: ["label", "column"],
        message: "the label column is also a feature",
      });
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

/** Shapes of the model's weights in the order tfjs `model.getWeights()` returns them. */
export function weightShapes(plan: Plan): number[][] {
  const sizes = [plan.features.length, ...plan.model.hidden, 1];
  const shapes: number[][] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    shapes.push([sizes[i] as number, sizes[i + 1] as number], [sizes[i + 1] as number]);
  }
  return shapes;
}

export function paramCount(plan: Plan): number {
  return weightShapes(plan).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
}
