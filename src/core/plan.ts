import { type CohortSpec, derivedSchema, indexDateSchema, labelSchema } from "./cohort/spec";
import { dpSgdGrid } from "./privacy/grid";
import { sha256Hex } from "./sha256";
import { STRATEGY_NAMES, type StrategyName } from "./strategies/types";
import { z } from "./zod";

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
    // Rows with the same value in this column are one patient: DP-SGD samples and clips per patient, not per
    // row. The value is hashed in the worker and never leaves it; it must not be a feature or the label.
    patientColumn: z.string().min(1).optional(),
  })
  .strict();

const activation = z.enum(["relu", "tanh", "sigmoid", "elu"]);

/** Dense layers after the inputs (flattened pixels for an image plan), then Dense(1, sigmoid). */
const mlpSchema = z
  .object({
    type: z.literal("mlp"),
    hidden: z.array(z.number().int().positive().max(4096)).max(8),
    activation,
  })
  .strict();

/**
 * A small CNN for image plans: each conv entry is Conv2D(filters, kernel×kernel, stride, padding "same",
 * activation) followed, when `pool` is set, by MaxPooling2D(pool×pool, stride pool, padding "valid"); then
 * Flatten, the `dense` hidden layers with the same activation, and Dense(1, sigmoid). "same" padding keeps
 * a conv from shrinking the image (only strides and pools do, to ceil(n/stride) and floor(n/pool)), so
 * border pixels count like the others and the sizes are easy to plan.
 */
const cnnSchema = z
  .object({
    type: z.literal("cnn"),
    conv: z
      .array(
        z
          .object({
            filters: z.number().int().min(1).max(256),
            kernel: z.number().int().min(1).max(11),
            stride: z.union([z.literal(1), z.literal(2)]).optional(),
            pool: z.union([z.literal(2), z.literal(3)]).optional(),
          })
          .strict(),
      )
      .min(1)
      .max(6),
    dense: z.array(z.number().int().positive().max(4096)).max(4),
    activation,
  })
  .strict();

/** What an image plan's labels CSV is keyed by: a DICOM attribute, the file's relative path, or none. */
export const IMAGE_LABEL_KEYS = [
  "SOPInstanceUID",
  "PatientID",
  "AccessionNumber",
  "StudyInstanceUID",
  "SeriesInstanceUID",
  "path",
  "folder",
] as const;

/**
 * An image plan's inputs: every file becomes one height × width × channels float tensor in [0, 1],
 * channel-last (the pixel pipeline's toModelInput). DICOM pixels are mapped through the plan's fixed window
 * (the same at every site, never each file's own); `frame` picks the frame of multi-frame files.
 */
const imageSchema = z
  .object({
    width: z.number().int().min(1).max(512),
    height: z.number().int().min(1).max(512),
    channels: z.union([z.literal(1), z.literal(3)]),
    // center ± width/2 maps to [0, 1] (e.g. Hounsfield units for CT: center 40, width 400 for soft tissue).
    window: z
      .object({ center: z.number().finite(), width: z.number().finite().positive() })
      .strict()
      .optional(),
    frame: z.union([z.number().int().min(0), z.literal("middle")]).optional(),
    source: z.enum(["dicom", "images"]),
    labels: z
      .object({
        // "folder": the label is the name of the folder directly holding the file, compared to
        // label.positive and label.negative. Any other key: a labels CSV maps that key to the label.
        key: z.enum(IMAGE_LABEL_KEYS),
        // The labels CSV's column holding the key (default: the key's name, e.g. "SOPInstanceUID").
        column: z.string().min(1).optional(),
        // The labels CSV's column holding the label (default: "label").
        labelColumn: z.string().min(1).optional(),
      })
      .strict(),
  })
  .strict();

/** Longest round deadline or extension a plan may set: 30 days. */
export const MAX_DEADLINE_MINUTES = 43_200;

/**
 * How the coordinator turns a round's updates into the next model (src/core/strategies). Absent: unweighted
 * FedAvg, as every plan made before the field existed, so those plans keep their hash. Each setting belongs
 * to some strategies only (AGGREGATION_SETTINGS); the defaults are in src/core/strategies/strategies.ts.
 */
const aggregationSchema = z
  .object({
    strategy: z.enum(STRATEGY_NAMES),
    // Server step size η: FedAvgM, FedAdam, FedYogi, FedAdagrad.
    serverLearningRate: z.number().positive().max(10).optional(),
    // FedAvgM's server momentum β (Hsu et al. 2019).
    momentum: z.number().gt(0).lt(1).optional(),
    // Reddi et al. 2021: decay rates of the first and second moments, and the degree of adaptivity τ.
    beta1: z.number().min(0).lt(1).optional(),
    beta2: z.number().min(0).lt(1).optional(),
    tau: z.number().positive().max(1).optional(),
    // Trimmed mean: the fraction β of updates dropped at each end of every coordinate (Yin et al. 2018).
    trimFraction: z.number().gt(0).lt(0.5).optional(),
    // FedProx's μ (Li et al. 2020): each site adds μ(w − w_global) to its gradients; any strategy.
    proximalMu: z.number().positive().max(1000).optional(),
  })
  .strict();

/** Which strategies each aggregation setting applies to (proximalMu: all of them). */
export const AGGREGATION_SETTINGS: Readonly<Record<string, readonly StrategyName[]>> = {
  serverLearningRate: ["fedavgm", "fedadam", "fedyogi", "fedadagrad"],
  momentum: ["fedavgm"],
  beta1: ["fedadam", "fedyogi", "fedadagrad"],
  beta2: ["fedadam", "fedyogi"],
  tau: ["fedadam", "fedyogi", "fedadagrad"],
  trimFraction: ["trimmed-mean"],
  proximalMu: STRATEGY_NAMES,
};

/** Most weights a plan's model may have: an update of 10 million float32 is 40 MB per site and round. */
export const MAX_PARAMS = 10_000_000;

const planShape = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and dashes (at most 63)"),
    title: z.string().min(1).max(200),
    task: z.literal("binary-classification").default("binary-classification"),
    // At least one, except in an image plan, whose inputs are the pixels (checked in the refinement below).
    features: z.array(featureSchema).max(4096),
    csv: csvSchema.optional(),
    // An image plan: examples are DICOM or PNG/JPEG files, each one example (see imageSchema).
    image: imageSchema.optional(),
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
    model: z.discriminatedUnion("type", [mlpSchema, cnnSchema]),
    training: z
      .object({
        // Site-update plans only (required there, refused in a dp-sgd plan, which counts steps instead).
        epochs: z.number().int().positive().max(100).optional(),
        batchSize: z.number().int().positive().max(4096).optional(),
        optimizer: z.enum(["sgd", "momentum", "adam"]),
        learningRate: z.number().positive().max(10),
        // "momentum" only: heavy ball as torch.optim.SGD, v = mu v + g, w -= lr v (default DEFAULT_MOMENTUM).
        momentum: z.number().gt(0).lt(1).optional(),
      })
      .strict(),
    privacy: z
      .object({
        // Absent: "site-update" (every plan made before DP-SGD), so those plans keep their hash.
        // "site-update": each site clips its whole round update to clipNorm and adds noise z * 2C once.
        // "dp-sgd": each step clips every unit's (patient's) gradient to clipNorm and adds noise z * C.
        mechanism: z.enum(["dp-sgd", "site-update"]).optional(),
        clipNorm: z.number().positive().finite(),
        // Zero would send the clipped delta without noise: no privacy at all, so a plan cannot ask for it.
        noiseMultiplier: z.number().positive().finite(),
        delta: z.number().positive().lt(1),
        // Each site stops taking part before its own releases in this federation would spend more than
        // this, at the plan's delta (src/core/privacy/budget.ts).
        epsilonBudget: z.number().positive().finite(),
        // dp-sgd only: noised steps per round, and each unit's chance to be in a step's batch, given either
        // as the rate q or as the expected batch size B (then q = B / N at a site with N units).
        stepsPerRound: z.number().int().min(1).max(100000).optional(),
        samplingRate: z.number().gt(0).max(1).optional(),
        expectedBatchSize: z.number().int().min(1).max(10_000_000).optional(),
      })
      .strict(),
    evaluation: z
      .object({
        holdoutFraction: z.number().gt(0).lt(1),
        // Opt-in: after evaluating each global model version on its held-out split, a site also sends the
        // coordinator that split's size, loss and accuracy (not noised, not covered by ε; the plan view says
        // so). Absent means false, and leaves the plan and its hash as they were before the field existed.
        reportMetrics: z.boolean().optional(),
      })
      .strict()
      .default({ holdoutFraction: 0.2 }),
    rounds: z.number().int().positive().max(10000),
    minSites: z.number().int().positive().max(1000),
    // Absent: unweighted FedAvg (see aggregationSchema).
    aggregation: aggregationSchema.optional(),
    // Absent from plans made before deadlines, which keep their hashes and their rule: a round closes as soon
    // as minSites sites have sent. With it, every update that arrives before the deadline counts: a round
    // closes once every enrolled site has sent, or `minutes` after it opened if at least minSites have;
    // otherwise the deadline moves on by extendMinutes (default: minutes again) until they have. Fractions of
    // a minute are allowed (0.05 is 3 s), for tests and demonstrations.
    roundDeadline: z
      .object({
        minutes: z.number().min(0.05).max(MAX_DEADLINE_MINUTES),
        extendMinutes: z.number().min(0.05).max(MAX_DEADLINE_MINUTES).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const planSchema = planShape.superRefine((plan, ctx) => {
  if (plan.image) checkImagePlan(plan, plan.image, ctx);
  else {
    if (plan.features.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["features"],
        message: "needs at least one feature (only an image plan, with plan.image, has none)",
      });
    if (plan.cohort) checkCohortPlan(plan, ctx);
    else checkCsvPlan(plan, ctx);
  }
  checkModel(plan, ctx);
  checkMechanism(plan, ctx);
  checkAggregation(plan, ctx);
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
  const patientColumn = plan.csv?.patientColumn;
  if (patientColumn !== undefined) {
    const clash = columns.has(patientColumn)
      ? "is also a feature column: a patient identifier must not be a model input"
      : patientColumn === plan.label.column
        ? "is also the label column"
        : undefined;
    if (clash) ctx.addIssue({ code: "custom", path: ["csv", "patientColumn"], message: clash });
  }
  const listed = plan.csv?.columns;
  if (listed) {
    if (new Set(listed).size !== listed.length) {
      ctx.addIssue({ code: "custom", path: ["csv", "columns"], message: "column names must be unique" });
    }
    for (const column of [...columns, plan.label.column ?? "", ...(patientColumn ? [patientColumn] : [])]) {
      if (!listed.includes(column)) {
        ctx.addIssue({
          code: "custom",
          path: ["csv", "columns"],
          message: `does not list "${column}", which the features, the label or csv.patientColumn read`,
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

/**
 * An image plan's inputs are the pixels: no features, no CSV layout, no cohort, and labels from a labels CSV
 * or folder names (image.labels) rather than label.column or label.criterion.
 */
function checkImagePlan(plan: PlanShape, image: ImageSpec, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  if (plan.features.length > 0)
    issue(["features"], "must be [] in an image plan (plan.image): its inputs are the pixels");
  if (plan.csv !== undefined)
    issue(["csv"], "an image plan reads no CSV rows; its labels CSV is described by image.labels");
  if (plan.cohort !== undefined)
    issue(["cohort"], "a plan is either an image plan or a cohort plan, not both");
  if (plan.label.column !== undefined)
    issue(
      ["label", "column"],
      "an image plan takes its labels as image.labels says (labelColumn), not from here",
    );
  if (plan.label.criterion !== undefined) issue(["label", "criterion"], "needs plan.cohort, not plan.image");
  const { key, column, labelColumn } = image.labels;
  if (key === "folder") {
    for (const [name, value] of [
      ["column", column],
      ["labelColumn", labelColumn],
    ] as const)
      if (value !== undefined)
        issue(
          ["image", "labels", name],
          'is not used with key "folder": the label is the name of the folder directly holding each file',
        );
  } else {
    const columns = imageLabelColumns(image);
    if (columns?.column === columns?.labelColumn)
      issue(["image", "labels", "labelColumn"], "must differ from the key column image.labels.column");
  }
  if (image.source === "images") {
    if (key !== "path" && key !== "folder")
      issue(
        ["image", "labels", "key"],
        `"${key}" is a DICOM attribute; PNG and JPEG files are labelled by "path" or "folder"`,
      );
    if (image.frame !== undefined)
      issue(["image", "frame"], 'selects a frame of multi-frame DICOM files; use it with source "dicom"');
  }
}

/**
 * The two privacy mechanisms train differently: a site-update plan runs epochs of minibatches and noises the
 * round's update once; a dp-sgd plan runs stepsPerRound Poisson-sampled steps, each noised. Each refuses the
 * other's fields, so a plan says one thing only.
 */
function checkMechanism(plan: PlanShape, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const { training, privacy } = plan;
  if (training.momentum !== undefined && training.optimizer !== "momentum")
    issue(
      ["training", "momentum"],
      `is used only with optimizer "momentum", not "${training.optimizer}": remove it or change the optimizer`,
    );
  if (privacy.mechanism === "dp-sgd") {
    for (const field of ["epochs", "batchSize"] as const)
      if (training[field] !== undefined)
        issue(
          ["training", field],
          "is not used by a dp-sgd plan, which trains privacy.stepsPerRound Poisson-sampled steps per round: remove it",
        );
    if (privacy.stepsPerRound === undefined)
      issue(
        ["privacy", "stepsPerRound"],
        "is required in a dp-sgd plan: the number of noised steps per round",
      );
    const hasRate = privacy.samplingRate !== undefined;
    if (hasRate === (privacy.expectedBatchSize !== undefined))
      issue(
        ["privacy", hasRate ? "expectedBatchSize" : "samplingRate"],
        hasRate
          ? "cannot be given with privacy.samplingRate: give exactly one of the two"
          : "is required in a dp-sgd plan, unless privacy.expectedBatchSize is given: give exactly one of the two",
      );
    return;
  }
  for (const field of ["epochs", "batchSize"] as const)
    if (training[field] === undefined)
      issue(["training", field], 'is required (unless privacy.mechanism is "dp-sgd")');
  // The site-update trainer (tfjs's own optimizers, workers/train/model.ts) has sgd and adam only.
  if (training.optimizer === "momentum")
    issue(
      ["training", "optimizer"],
      'is "momentum", which only a dp-sgd plan trains with: use "sgd" or "adam", or set privacy.mechanism to "dp-sgd"',
    );
  for (const field of ["stepsPerRound", "samplingRate", "expectedBatchSize"] as const)
    if (privacy[field] !== undefined)
      issue(
        ["privacy", field],
        'is used only by a dp-sgd plan: set privacy.mechanism to "dp-sgd" or remove it',
      );
}

/** An aggregation setting is refused where the plan's strategy does not use it, so a plan says one thing. */
function checkAggregation(plan: PlanShape, ctx: z.RefinementCtx): void {
  const aggregation = plan.aggregation;
  if (!aggregation) return;
  for (const [field, strategies] of Object.entries(AGGREGATION_SETTINGS)) {
    const value = aggregation[field as keyof typeof aggregation];
    if (value === undefined || strategies.includes(aggregation.strategy)) continue;
    ctx.addIssue({
      code: "custom",
      path: ["aggregation", field],
      message:
        `is not used by the "${aggregation.strategy}" strategy, only by ${strategies.map((s) => `"${s}"`).join(", ")}: ` +
        "remove it or change aggregation.strategy",
    });
  }
}

/**
 * A CNN needs an image plan (an MLP works on either: an image plan's pixels are flattened); every conv entry
 * must leave at least 1×1 pixels, and the model at most MAX_PARAMS weights.
 */
function checkModel(plan: PlanShape, ctx: z.RefinementCtx): void {
  const model = plan.model;
  if (model.type === "cnn") {
    if (!plan.image) {
      ctx.addIssue({
        code: "custom",
        path: ["model", "type"],
        message: '"cnn" needs an image plan: add plan.image, or use "mlp" for features',
      });
      return;
    }
    const sizes = convOutputSizes(plan.image, model.conv);
    const bad = sizes.findIndex((s) => s.height < 1 || s.width < 1);
    if (bad >= 0) {
      const before = bad === 0 ? plan.image : (sizes[bad - 1] as Size);
      const after = sizes[bad] as Size;
      ctx.addIssue({
        code: "custom",
        path: ["model", "conv", bad],
        message:
          `model.conv[${bad}] shrinks ${before.height}×${before.width} pixels to ${after.height}×${after.width}: ` +
          "remove its pool or stride (or an earlier one), or make plan.image larger",
      });
      return;
    }
  }
  const layers = weightLayers(plan);
  const total = layers.reduce((n, l) => n + l.count, 0);
  if (total > MAX_PARAMS) {
    const largest = layers.reduce((a, b) => (b.count > a.count ? b : a));
    ctx.addIssue({
      code: "custom",
      path: ["model"],
      message:
        `has ${total} weights, more than the ${MAX_PARAMS} a plan's model may have (each update would be ` +
        `${Math.round((total * 4) / 1e6)} MB); the largest layer is ${largest.name} with ${largest.count}${largest.hint}`,
    });
    return;
  }
  // DP-SGD's noise grid must fit the noise table for this many weights (./privacy/grid.ts).
  if (plan.privacy.mechanism === "dp-sgd") {
    try {
      dpSgdGrid(plan.privacy, total);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      ctx.addIssue({
        code: "custom",
        path: ["privacy", "noiseMultiplier"],
        message: e.message.replace(/\.$/, ""),
      });
    }
  }
}

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

/** Heavy-ball momentum when a "momentum" plan does not give training.momentum (torch.optim.SGD's usual 0.9). */
export const DEFAULT_MOMENTUM = 0.9;

/**
 * A round's deadline after it opens and the step it moves by while fewer than minSites have sent, in ms;
 * undefined for a plan without a deadline (its rounds close at quorum).
 */
export function roundDeadlineMs(plan: Plan): { roundMs: number; extendMs: number } | undefined {
  const deadline = plan.roundDeadline;
  if (!deadline) return undefined;
  return {
    roundMs: deadline.minutes * 60_000,
    extendMs: (deadline.extendMinutes ?? deadline.minutes) * 60_000,
  };
}

/** Whether the plan trains by DP-SGD (per-unit clipping and noise at every step) rather than site-update. */
export function isDpSgd(plan: Plan): boolean {
  return plan.privacy.mechanism === "dp-sgd";
}

/**
 * What one unit of privacy is: the guarantee covers adding or removing one patient, one CSV row or one image.
 * A cohort is one example per patient; a CSV plan has patients only when csv.patientColumn groups its rows;
 * a DICOM plan groups files by PatientID (a file without one is its own patient); PNG/JPEG files are images.
 */
export function privacyUnit(plan: Plan): "patient" | "row" | "image" {
  if (plan.cohort) return "patient";
  if (plan.image) return plan.image.source === "dicom" ? "patient" : "image";
  return plan.csv?.patientColumn !== undefined ? "patient" : "row";
}

/** A site-update plan's training settings, epochs and batch size present (validation guarantees them). */
export type SiteUpdateTraining = Plan["training"] & { epochs: number; batchSize: number };

/** The epochs and batch size of a site-update plan; a dp-sgd plan has neither, so asking is our bug. */
export function siteUpdateTraining(plan: Plan): SiteUpdateTraining {
  const { epochs, batchSize } = plan.training;
  if (isDpSgd(plan) || epochs === undefined || batchSize === undefined)
    throw new Error(
      "Epochs and batch size were asked of a dp-sgd plan, which trains by steps; this is a bug in fedward.",
    );
  return { ...plan.training, epochs, batchSize };
}

/** A dp-sgd plan's privacy settings, stepsPerRound present and exactly one of samplingRate / expectedBatchSize. */
export type DpSgdPrivacy = Plan["privacy"] & { mechanism: "dp-sgd"; stepsPerRound: number };

/** The privacy settings of a dp-sgd plan; asking a site-update plan is our bug. */
export function dpSgdPrivacy(plan: Plan): DpSgdPrivacy {
  const { privacy } = plan;
  if (privacy.mechanism !== "dp-sgd" || privacy.stepsPerRound === undefined)
    throw new Error("DP-SGD settings were asked of a site-update plan; this is a bug in fedward.");
  return { ...privacy, mechanism: "dp-sgd", stepsPerRound: privacy.stepsPerRound };
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

export type ImageSpec = z.infer<typeof imageSchema>;
export type CnnModel = z.infer<typeof cnnSchema>;
export type ConvSpec = CnnModel["conv"][number];
interface Size {
  height: number;
  width: number;
  channels: number;
}

/**
 * The labels CSV's key column and label column of an image plan, defaults filled in (the key's name and
 * "label"); undefined for folder labels.
 */
export function imageLabelColumns(image: ImageSpec): { column: string; labelColumn: string } | undefined {
  const { key, column, labelColumn } = image.labels;
  if (key === "folder") return undefined;
  return { column: column ?? key, labelColumn: labelColumn ?? "label" };
}

/** Number of model inputs: the width of every example's x (an image's pixels, flattened H×W×C). */
export function inputWidth(plan: Plan): number {
  if (plan.image) return plan.image.width * plan.image.height * plan.image.channels;
  return plan.features.reduce((sum, f) => sum + featureWidth(f), 0);
}

/** Shape of one example as the model takes it: [inputWidth] for features, [height, width, channels] for images. */
export function inputShape(plan: Plan): number[] {
  if (plan.image) return [plan.image.height, plan.image.width, plan.image.channels];
  return [inputWidth(plan)];
}

/**
 * Size after each conv entry and its pool. Conv padding is "same" (ceil(n / stride)); max pooling is
 * "valid" with stride = pool size (floor(n / pool)); tfjs computes the same (computeConv2DInfo and
 * computePool2DInfo).
 */
export function convOutputSizes(image: Pick<ImageSpec, "height" | "width">, conv: ConvSpec[]): Size[] {
  let { height, width } = image;
  return conv.map((c) => {
    const stride = c.stride ?? 1;
    const pool = c.pool ?? 1;
    height = Math.floor(Math.ceil(height / stride) / pool);
    width = Math.floor(Math.ceil(width / stride) / pool);
    return { height, width, channels: c.filters };
  });
}

interface WeightLayer {
  /** The plan field that makes this layer, for messages: "model.conv[0]", "model.dense[1]", "the output layer". */
  name: string;
  shapes: number[][];
  count: number;
  /** Where a too-large layer's size comes from, for the message. */
  hint: string;
}

/** The model's layers that have weights, in order, each with its kernel and bias shapes. */
function weightLayers(plan: Plan): WeightLayer[] {
  const layers: WeightLayer[] = [];
  const push = (name: string, shapes: number[][], hint = "") =>
    layers.push({ name, shapes, count: shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0), hint });
  const model = plan.model;
  let width = inputWidth(plan);
  let hint = plan.image
    ? ` (its input is the ${plan.image.height}×${plan.image.width}×${plan.image.channels} image: make plan.image smaller or use a CNN)`
    : "";
  const [hidden, field] = model.type === "mlp" ? [model.hidden, "hidden"] : [model.dense, "dense"];
  if (model.type === "cnn") {
    const image = plan.image as ImageSpec;
    let channels: number = image.channels;
    model.conv.forEach((c, i) => {
      push(`model.conv[${i}]`, [[c.kernel, c.kernel, channels, c.filters], [c.filters]]);
      channels = c.filters;
    });
    const last = convOutputSizes(image, model.conv).at(-1) as Size;
    width = last.height * last.width * last.channels;
    const i = model.conv.length - 1;
    hint = ` (its input is the ${last.height}×${last.width}×${last.channels} output of model.conv[${i}]: add a pool or a stride there, or use fewer filters)`;
  }
  [...hidden, 1].forEach((units, i) => {
    push(i < hidden.length ? `model.${field}[${i}]` : "the output layer", [[width, units], [units]], hint);
    width = units;
    hint = "";
  });
  return layers;
}

/** Shapes of the model's weights in the order tfjs `model.getWeights()` returns them. */
export function weightShapes(plan: Plan): number[][] {
  return weightLayers(plan).flatMap((l) => l.shapes);
}

export function paramCount(plan: Plan): number {
  return weightLayers(plan).reduce((n, l) => n + l.count, 0);
}
