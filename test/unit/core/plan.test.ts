import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  cohortSpecOf,
  convOutputSizes,
  dpSgdPrivacy,
  imageLabelColumns,
  inputShape,
  inputWidth,
  isDpSgd,
  PlanError,
  paramCount,
  parsePlan,
  planHash,
  privacyUnit,
  siteUpdateTraining,
  weightShapes,
} from "../../../src/core/plan";
import { cnnPlanJson } from "../workers/image-plans";

type Json = Record<string, unknown>;

/**
 * The demo plans as they were before DP-SGD (site-update mechanism), kept as fixtures: the demo plans in
 * public/demo move on, these stay at the hashes sites approved.
 */
function fixturePlanJson(name: "wdbc" | "synthea-hypertension" | "digits"): Json {
  return JSON.parse(readFileSync(`test/fixtures/plans/${name}-site-update.json`, "utf8")) as Json;
}

function demoPlanJson(): Json {
  return fixturePlanJson("wdbc");
}

/** The same JSON with the keys of every object in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Json)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return value;
}

function refusal(input: unknown): PlanError {
  try {
    parsePlan(input);
  } catch (error) {
    if (error instanceof PlanError) return error;
    throw error;
  }
  throw new Error("parsePlan accepted a bad plan");
}

describe("parsePlan", () => {
  it("accepts the demo plan and keeps its values", () => {
    // Prepare
    const raw = demoPlanJson();

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(plan.id).toBe("wdbc-demo");
    expect(plan.features).toHaveLength(30);
    expect(plan.model).toEqual({ type: "mlp", hidden: [8], activation: "relu" });
    expect(plan.privacy).toEqual({ clipNorm: 2, noiseMultiplier: 0.02, delta: 1e-5, epsilonBudget: 5000 });
    expect(plan.label).toEqual({ column: "diagnosis", positive: "malignant", negative: "benign" });
  });

  it("fills in the defaults for task and evaluation", () => {
    // Prepare
    const raw = demoPlanJson();
    delete raw.task;
    delete raw.evaluation;

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(plan.task).toBe("binary-classification");
    expect(plan.evaluation).toEqual({ holdoutFraction: 0.2 });
  });

  const badPlans: { what: string; path: string; mutate: (p: Json) => void }[] = [
    {
      what: "a negative clipNorm",
      path: "privacy.clipNorm",
      mutate: (p) => ((p.privacy as Json).clipNorm = -2),
    },
    { what: "a zero clipNorm", path: "privacy.clipNorm", mutate: (p) => ((p.privacy as Json).clipNorm = 0) },
    {
      what: "a zero noise multiplier (no noise at all)",
      path: "privacy.noiseMultiplier",
      mutate: (p) => ((p.privacy as Json).noiseMultiplier = 0),
    },
    {
      what: "no privacy budget",
      path: "privacy.epsilonBudget",
      mutate: (p) => delete (p.privacy as Json).epsilonBudget,
    },
    {
      what: "an infinite privacy budget",
      path: "privacy.epsilonBudget",
      mutate: (p) => ((p.privacy as Json).epsilonBudget = Number.POSITIVE_INFINITY),
    },
    {
      what: "a missing label.positive",
      path: "label.positive",
      mutate: (p) => delete (p.label as Json).positive,
    },
    {
      what: "a duplicate feature column",
      path: "features.3.column",
      mutate: (p) => {
        const features = p.features as Json[];
        (features[3] as Json).column = (features[1] as Json).column;
      },
    },
    {
      what: "a label column that is also a feature",
      path: "label.column",
      mutate: (p) => ((p.label as Json).column = ((p.features as Json[])[2] as Json).column),
    },
    { what: "an id with capitals and a space", path: "id", mutate: (p) => (p.id = "WDBC demo") },
    { what: "an id of 64 characters", path: "id", mutate: (p) => (p.id = "a".repeat(64)) },
    {
      what: "a zero feature std",
      path: "features.0.std",
      mutate: (p) => (((p.features as Json[])[0] as Json).std = 0),
    },
    {
      what: "equal positive and negative labels",
      path: "label.negative",
      mutate: (p) => ((p.label as Json).negative = "malignant"),
    },
    {
      what: "a fractional epoch count",
      path: "training.epochs",
      mutate: (p) => ((p.training as Json).epochs = 1.5),
    },
    { what: "a delta of 1", path: "privacy.delta", mutate: (p) => ((p.privacy as Json).delta = 1) },
  ];

  it.each(badPlans)("refuses $what, naming $path", ({ path, mutate }) => {
    // Prepare
    const raw = demoPlanJson();
    mutate(raw);

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.name).toBe("PlanError");
    expect(error.message).toContain(`${path}: `);
  });

  it("accepts an id of exactly 63 characters", () => {
    // Prepare
    const raw = demoPlanJson();
    raw.id = `a${"-".repeat(61)}z`;

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(plan.id).toHaveLength(63);
  });

  it("refuses an unknown top-level field and names it", () => {
    // Prepare
    const raw = demoPlanJson();
    raw.epsilon = 3;

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain('"epsilon"');
  });

  it("refuses an unknown nested field and names both the object and the key", () => {
    // Prepare
    const raw = demoPlanJson();
    (raw.privacy as Json).epsilon = 3;

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain("privacy: ");
    expect(error.message).toContain('"epsilon"');
  });

  it("names every bad field when there are several", () => {
    // Prepare
    const raw = demoPlanJson();
    (raw.privacy as Json).clipNorm = -1;
    (raw.training as Json).batchSize = 0;

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain("privacy.clipNorm: ");
    expect(error.message).toContain("training.batchSize: ");
  });

  it("says where the plan came from", () => {
    // Prepare
    const raw = demoPlanJson();
    raw.rounds = 0;

    // Execute
    const execute = () => parsePlan(raw, "file wdbc-plan.json");

    // Assert
    expect(execute).toThrow(/^The file wdbc-plan\.json is not a valid federation plan\. .*rounds: /);
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth, drops undefined members and keeps array order", () => {
    // Prepare
    const value = { b: 1, a: [{ d: "x", c: null }, 3], e: undefined, é: true };

    // Execute
    const json = canonicalJson(value);

    // Assert
    expect(json).toBe('{"a":[{"c":null,"d":"x"},3],"b":1,"é":true}');
  });

  it("does not depend on key order", () => {
    // Prepare
    const raw = demoPlanJson();

    // Execute
    const forward = canonicalJson(raw);
    const backward = canonicalJson(reverseKeys(raw));

    // Assert
    expect(JSON.stringify(reverseKeys(raw))).not.toBe(JSON.stringify(raw));
    expect(backward).toBe(forward);
    expect(JSON.parse(forward)).toEqual(raw);
  });
});

describe("planHash", () => {
  it("is the SHA-256 of the canonical JSON of the plan", async () => {
    // Prepare
    const plan = parsePlan(demoPlanJson());
    const expected = createHash("sha256").update(canonicalJson(plan), "utf8").digest("hex");

    // Execute
    const hash = await planHash(plan);

    // Assert
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(expected);
  });

  it("hashes a non-ASCII title as UTF-8", async () => {
    // Prepare
    const raw = demoPlanJson();
    raw.title = "Tumeur du sein — démo (WDBC) 乳腺";
    const plan = parsePlan(raw);
    const expected = createHash("sha256")
      .update(Buffer.from(canonicalJson(plan), "utf8"))
      .digest("hex");

    // Execute
    const hash = await planHash(plan);

    // Assert
    expect(hash).toBe(expected);
  });

  it("is stable and independent of key order and of spelled-out defaults", async () => {
    // Prepare
    const raw = demoPlanJson();
    const withoutDefaults = demoPlanJson();
    delete withoutDefaults.task;
    delete withoutDefaults.evaluation;

    // Execute
    const first = await planHash(parsePlan(raw));
    const again = await planHash(parsePlan(demoPlanJson()));
    const reordered = await planHash(parsePlan(reverseKeys(raw)));
    const defaulted = await planHash(parsePlan(withoutDefaults));

    // Assert
    expect(again).toBe(first);
    expect(reordered).toBe(first);
    expect(defaulted).toBe(first);
  });

  it("changes when any value changes", async () => {
    // Prepare
    const raw = demoPlanJson();
    const changed = demoPlanJson();
    (changed.privacy as Json).noiseMultiplier = 0.021;

    // Execute
    const original = await planHash(parsePlan(raw));
    const other = await planHash(parsePlan(changed));

    // Assert
    expect(other).not.toBe(original);
  });
});

describe("weightShapes and paramCount", () => {
  it("give the demo plan's 30 -> 8 -> 1 network: 30*8 + 8 + 8*1 + 1 = 257 weights", () => {
    // Prepare
    const plan = parsePlan(demoPlanJson());

    // Execute
    const shapes = weightShapes(plan);
    const count = paramCount(plan);

    // Assert
    expect(shapes).toEqual([[30, 8], [8], [8, 1], [1]]);
    expect(count).toBe(257);
  });

  it("handle several hidden layers and none", () => {
    // Prepare
    const deep = demoPlanJson();
    (deep.model as Json).hidden = [5, 3];
    const logistic = demoPlanJson();
    (logistic.model as Json).hidden = [];

    // Execute
    const deepShapes = weightShapes(parsePlan(deep));
    const deepCount = paramCount(parsePlan(deep));
    const logisticShapes = weightShapes(parsePlan(logistic));
    const logisticCount = paramCount(parsePlan(logistic));

    // Assert
    expect(deepShapes).toEqual([[30, 5], [5], [5, 3], [3], [3, 1], [1]]);
    expect(deepCount).toBe(30 * 5 + 5 + 5 * 3 + 3 + 3 + 1);
    expect(logisticShapes).toEqual([[30, 1], [1]]);
    expect(logisticCount).toBe(31);
  });
});

describe("cohort plans (FHIR and OMOP)", () => {
  const fhirDemo = () => fixturePlanJson("synthea-hypertension");

  it("accepts the FHIR demo plan and gives the cohort engine its spec, in the plan's feature order", () => {
    // Execute
    const plan = parsePlan(fhirDemo());
    const spec = cohortSpecOf(plan);

    // Assert
    expect(spec?.indexDate).toEqual({ kind: "fixed", date: "2016-01-01" });
    expect(spec?.features.map((f) => f.name)).toEqual(plan.features.map((f) => f.name));
    expect(spec?.features[1]?.from).toEqual({ kind: "sex" });
    expect(spec?.label).toMatchObject({ kind: "observation", above: 140, horizonDays: 1096 });
    // 8 numbers, sex (2 levels) and smoking (3 levels): 13 model inputs
    expect(inputWidth(plan)).toBe(13);
    expect(cohortSpecOf(parsePlan(demoPlanJson()))).toBeUndefined();
  });

  it.each([
    [
      "a feature with a column",
      (p: Json) => (((p.features as Json[])[0] as Json).column = "age"),
      "features.0.column",
    ],
    [
      "a feature without from",
      (p: Json) => delete ((p.features as Json[])[0] as Json).from,
      "features.0.from",
    ],
    ["sex as a number", (p: Json) => (((p.features as Json[])[1] as Json).type = "number"), "features.1"],
    ["no label criterion", (p: Json) => delete (p.label as Json).criterion, "label.criterion"],
    ["a label column", (p: Json) => ((p.label as Json).column = "y"), "label.column"],
    ["CSV options", (p: Json) => (p.csv = { decimal: "," }), "csv"],
    [
      "an impossible index date",
      (p: Json) => ((p.cohort as Json).indexDate = { kind: "fixed", date: "2016-02-30" }),
      "cohort.indexDate.date",
    ],
  ])("refuses %s, naming the field", (_, mutate, path) => {
    // Prepare
    const raw = fhirDemo();
    mutate(raw);

    // Execute
    const execute = () => parsePlan(raw);

    // Assert
    expect(execute).toThrow(PlanError);
    expect(execute).toThrow(new RegExp(`Fix these fields: .*${path.replace(/\./g, "\\.")}`));
  });

  it("refuses a CSV plan whose feature is derived from records", () => {
    // Prepare
    const raw = demoPlanJson();
    ((raw.features as Json[])[0] as Json).from = { kind: "age" };

    // Execute
    const execute = () => parsePlan(raw);

    // Assert
    expect(execute).toThrow(/features\.0\.from: needs a cohort/);
  });
});

describe("evaluation.reportMetrics (sites' consent to send held-out metrics)", () => {
  it("is absent from a plan that does not ask, which keeps the hash pinned above", async () => {
    // Prepare
    const raw = fixturePlanJson("wdbc");

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(plan.evaluation.reportMetrics).toBeUndefined();
    expect(canonicalJson(plan)).not.toContain("reportMetrics");
    expect(await planHash(plan)).toBe("2a54dd9fff35fdae3fc0f53f470bcae334d0f08cf326770d97b939047fe96121");
  });

  it("parses true, and a plan that asks has another hash than one that does not", async () => {
    // Prepare
    const raw = fixturePlanJson("wdbc");
    const evaluation = raw.evaluation as Json;

    // Execute
    const asking = parsePlan({ ...raw, evaluation: { ...evaluation, reportMetrics: true } });
    const notAsking = parsePlan({ ...raw, evaluation: { ...evaluation, reportMetrics: false } });

    // Assert
    expect(asking.evaluation).toEqual({ ...evaluation, reportMetrics: true });
    expect(notAsking.evaluation.reportMetrics).toBe(false);
    expect(await planHash(asking)).not.toBe(await planHash(parsePlan(raw)));
  });

  it("refuses a value that is not a boolean and names the field", () => {
    // Prepare
    const raw = fixturePlanJson("wdbc");

    // Execute
    const error = refusal({ ...raw, evaluation: { holdoutFraction: 0.2, reportMetrics: "yes" } });

    // Assert
    expect(error.message).toContain("evaluation.reportMetrics");
  });
});

describe("plan hashes from before image plans", () => {
  it.each([
    [
      "test/fixtures/plans/wdbc-site-update.json",
      "2a54dd9fff35fdae3fc0f53f470bcae334d0f08cf326770d97b939047fe96121",
    ],
    [
      "test/fixtures/plans/synthea-hypertension-site-update.json",
      "d20e3c788c5e8d7c7b69c4522e8984a16bc82e5bfc79829dc11ccfad89bdf577",
    ],
  ])(
    "keep %s at the hash sites approved (the model union and image section add no fields)",
    async (file, hash) => {
      // Prepare
      const raw = JSON.parse(readFileSync(file, "utf8")) as unknown;

      // Execute
      const plan = parsePlan(raw);

      // Assert
      expect(await planHash(plan)).toBe(hash);
      expect(canonicalJson(plan)).not.toContain("image");
    },
  );
});

describe("image plans and CNN models", () => {
  it("accept a CNN image plan: 28×28×1 inputs, conv 8 (pool 2), conv 16 (stride 2, pool 2), dense 32", () => {
    // Execute
    const plan = parsePlan(cnnPlanJson());

    // Assert: 28 → pool → 14 → stride 2 → 7 → pool → 3; Flatten 3·3·16 = 144
    expect(inputWidth(plan)).toBe(784);
    expect(inputShape(plan)).toEqual([28, 28, 1]);
    expect(weightShapes(plan)).toEqual([
      [3, 3, 1, 8],
      [8],
      [3, 3, 8, 16],
      [16],
      [144, 32],
      [32],
      [32, 1],
      [1],
    ]);
    expect(paramCount(plan)).toBe(3 * 3 * 8 + 8 + (3 * 3 * 8 * 16 + 16) + (144 * 32 + 32) + (32 + 1));
    expect(plan.image?.frame).toBe("middle");
    expect(imageLabelColumns(plan.image as NonNullable<typeof plan.image>)).toEqual({
      column: "sop_uid",
      labelColumn: "finding",
    });
  });

  it("hash a CNN plan as written, with no defaults added to its conv layers", async () => {
    // Prepare
    const raw = cnnPlanJson();

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(JSON.parse(canonicalJson(plan))).toEqual({
      ...raw,
      task: "binary-classification",
      evaluation: { holdoutFraction: 0.2 },
    });
    expect(await planHash(plan)).toBe(await planHash(parsePlan(reverseKeys(raw))));
  });

  it("give [width] as the input shape of a features plan", () => {
    expect(inputShape(parsePlan(demoPlanJson()))).toEqual([30]);
  });

  it("let an MLP take an image plan's pixels flattened, and 3 colour channels", () => {
    // Prepare
    const raw = cnnPlanJson();
    (raw.image as Json).channels = 3;
    (raw.image as Json).width = 10;
    (raw.image as Json).height = 6;
    raw.model = { type: "mlp", hidden: [5], activation: "tanh" };

    // Execute
    const plan = parsePlan(raw);

    // Assert
    expect(inputShape(plan)).toEqual([6, 10, 3]);
    expect(weightShapes(plan)).toEqual([[180, 5], [5], [5, 1], [1]]);
  });

  it("fill in the labels CSV's default columns: the key's name and \"label\"; none for folder labels", () => {
    // Prepare
    const byPath = cnnPlanJson();
    (byPath.image as Json).labels = { key: "path" };
    const byFolder = cnnPlanJson();
    (byFolder.image as Json).labels = { key: "folder" };

    // Execute
    const path = imageLabelColumns(
      parsePlan(byPath).image as NonNullable<ReturnType<typeof parsePlan>["image"]>,
    );
    const folder = imageLabelColumns(
      parsePlan(byFolder).image as NonNullable<ReturnType<typeof parsePlan>["image"]>,
    );

    // Assert
    expect(path).toEqual({ column: "path", labelColumn: "label" });
    expect(folder).toBeUndefined();
  });

  it("size convs as 'same' padding and pools as 'valid': ceil(n / stride), then floor(n / pool)", () => {
    // Execute
    const sizes = convOutputSizes({ height: 29, width: 17 }, [
      { filters: 4, kernel: 5, stride: 2 },
      { filters: 6, kernel: 3, pool: 3 },
      { filters: 2, kernel: 1, stride: 2, pool: 2 },
    ]);

    // Assert: 29×17 → 15×9 → 5×3 → 3×2 → 1×1
    expect(sizes).toEqual([
      { height: 15, width: 9, channels: 4 },
      { height: 5, width: 3, channels: 6 },
      { height: 1, width: 1, channels: 2 },
    ]);
  });

  const badImagePlans: { what: string; path: string; message?: RegExp; mutate: (p: Json) => void }[] = [
    {
      what: "a CNN without an image section",
      path: "model.type",
      message: /needs an image plan/,
      mutate: (p) => {
        const model = p.model;
        for (const key of Object.keys(p)) delete p[key];
        Object.assign(p, demoPlanJson(), { model });
      },
    },
    {
      what: "an image plan with features",
      path: "features",
      message: /must be \[\] in an image plan/,
      mutate: (p) => (p.features = demoPlanJson().features),
    },
    {
      what: "a window of width 0",
      path: "image.window.width",
      mutate: (p) => ((p.image as Json).window = { center: 40, width: 0 }),
    },
    {
      what: "pools that shrink the image to nothing",
      path: "model.conv.3",
      // 28 → 9 → 3 → 1 → 0
      message: /model\.conv\[3\] shrinks 1×1 pixels to 0×0/,
      mutate: (p) => ((p.model as Json).conv = new Array(4).fill({ filters: 4, kernel: 3, pool: 3 })),
    },
    {
      what: "a model of more than 10 million weights",
      path: "model",
      // conv 3·3·16 + 16, dense 128·128·16 · 49 + 49, output 49 + 1
      message: /has 12845315 weights.*model\.dense\[0\].*128×128×16 output of model\.conv\[0\]/,
      mutate: (p) => {
        p.image = { ...(p.image as Json), width: 256, height: 256 };
        p.model = {
          type: "cnn",
          conv: [{ filters: 16, kernel: 3, pool: 2 }],
          dense: [49],
          activation: "relu",
        };
      },
    },
    {
      what: "folder labels with a key column",
      path: "image.labels.column",
      message: /not used with key "folder"/,
      mutate: (p) => ((p.image as Json).labels = { key: "folder", column: "file" }),
    },
    {
      what: "a DICOM attribute as the key of PNG files",
      path: "image.labels.key",
      mutate: (p) => {
        (p.image as Json).source = "images";
        delete (p.image as Json).frame;
      },
    },
    {
      what: "a frame for PNG files",
      path: "image.frame",
      mutate: (p) => ((p.image as Json).source = "images"),
    },
    {
      what: "a label column in an image plan",
      path: "label.column",
      mutate: (p) => ((p.label as Json).column = "diagnosis"),
    },
    {
      what: "CSV options in an image plan",
      path: "csv",
      mutate: (p) => (p.csv = { decimal: "," }),
    },
    {
      what: "the same labels CSV column for key and label",
      path: "image.labels.labelColumn",
      mutate: (p) => ((p.image as Json).labels = { key: "path", labelColumn: "path" }),
    },
    { what: "4 channels", path: "image.channels", mutate: (p) => ((p.image as Json).channels = 4) },
    { what: "a 513-pixel width", path: "image.width", mutate: (p) => ((p.image as Json).width = 513) },
    {
      what: "a stride of 3",
      path: "model.conv.0.stride",
      mutate: (p) => (((p.model as Json).conv as Json[])[0] = { filters: 8, kernel: 3, stride: 3 }),
    },
    {
      what: "seven conv layers",
      path: "model.conv",
      mutate: (p) => ((p.model as Json).conv = new Array(7).fill({ filters: 2, kernel: 1 })),
    },
    {
      what: "an unknown model type",
      path: "model.type",
      mutate: (p) => ((p.model as Json).type = "transformer"),
    },
  ];

  it.each(badImagePlans)("refuse $what, naming $path", ({ path, message, mutate }) => {
    // Prepare
    const raw = cnnPlanJson();
    mutate(raw);

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain(`${path}: `);
    if (message) expect(error.message).toMatch(message);
  });

  it("still needs at least one feature in a CSV plan", () => {
    // Prepare
    const raw = demoPlanJson();
    raw.features = [];

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toMatch(/features: needs at least one feature/);
  });

  it("refuse an MLP over a 512×512×3 image with its first layer named", () => {
    // Prepare
    const raw = cnnPlanJson();
    raw.image = { ...(raw.image as Json), width: 512, height: 512, channels: 3 };
    raw.model = { type: "mlp", hidden: [16], activation: "relu" };

    // Execute
    const error = refusal(raw);

    // Assert: 786432 · 16 + 16 + 17 weights
    expect(error.message).toMatch(/model: has 12582945 weights, more than the 10000000/);
    expect(error.message).toContain("model.hidden[0]");
  });
});

describe("site-update plans from before DP-SGD (fixtures of the demo plans as they were)", () => {
  it.each([
    ["wdbc", "2a54dd9fff35fdae3fc0f53f470bcae334d0f08cf326770d97b939047fe96121"],
    ["synthea-hypertension", "d20e3c788c5e8d7c7b69c4522e8984a16bc82e5bfc79829dc11ccfad89bdf577"],
    ["digits", "771cad073a2372a50bcd48053ca42d20e8543c8a5c6911b84487db799d9c5a61"],
  ] as const)("keep %s at its pinned hash, as the site-update mechanism", async (name, hash) => {
    // Execute
    const plan = parsePlan(fixturePlanJson(name));

    // Assert
    expect(await planHash(plan)).toBe(hash);
    expect(isDpSgd(plan)).toBe(false);
    expect(canonicalJson(plan)).not.toMatch(/mechanism|stepsPerRound|samplingRate|momentum|patientColumn/);
    expect(siteUpdateTraining(plan)).toEqual(plan.training);
  });

  it('hash an explicit mechanism "site-update" as written, differently from the absent one', async () => {
    // Prepare
    const raw = fixturePlanJson("wdbc");
    const explicit = { ...raw, privacy: { ...(raw.privacy as Json), mechanism: "site-update" } };

    // Execute
    const plan = parsePlan(explicit);

    // Assert
    expect(isDpSgd(plan)).toBe(false);
    expect(await planHash(plan)).not.toBe(await planHash(parsePlan(raw)));
  });
});

/** The WDBC fixture as a dp-sgd plan: steps per round and an expected batch instead of epochs and batches. */
function dpSgdPlanJson(privacy: Json = {}, training: Json = {}): Json {
  const raw = fixturePlanJson("wdbc");
  raw.training = { optimizer: "sgd", learningRate: 1, ...training };
  raw.privacy = {
    mechanism: "dp-sgd",
    clipNorm: 1,
    noiseMultiplier: 1.1,
    delta: 1e-5,
    epsilonBudget: 3,
    stepsPerRound: 8,
    expectedBatchSize: 40,
    ...privacy,
  };
  return raw;
}

describe("dp-sgd plans", () => {
  it("refuse a model too large for the noise table at its noise multiplier, and accept it with less noise", () => {
    // Prepare: about 1.05 million weights (30 -> 1024 -> 1000 -> 1)
    const big = (noiseMultiplier: number) => {
      const raw = dpSgdPlanJson({ noiseMultiplier });
      raw.model = { type: "mlp", hidden: [1024, 1000], activation: "relu" };
      return raw;
    };

    // Execute
    const error = refusal(big(40));

    // Assert
    expect(error.message).toMatch(
      /privacy\.noiseMultiplier: A model of 1057745 weights at privacy\.noiseMultiplier 40 is too large/,
    );
    expect(error.message).toMatch(/lower privacy\.noiseMultiplier or use a model with fewer weights/);
    expect(isDpSgd(parsePlan(big(5)))).toBe(true);
  });

  it("parse with steps per round and either an expected batch size or a sampling rate", () => {
    // Execute
    const byBatch = parsePlan(dpSgdPlanJson());
    const byRate = parsePlan(dpSgdPlanJson({ expectedBatchSize: undefined, samplingRate: 0.25 }));

    // Assert
    expect(isDpSgd(byBatch)).toBe(true);
    expect(dpSgdPrivacy(byBatch)).toMatchObject({ stepsPerRound: 8, expectedBatchSize: 40 });
    expect(dpSgdPrivacy(byRate)).toMatchObject({ stepsPerRound: 8, samplingRate: 0.25 });
    expect(byRate.privacy.expectedBatchSize).toBeUndefined();
  });

  it("give no epochs or batch size to a dp-sgd plan and no DP-SGD settings to a site-update plan", () => {
    // Prepare
    const dp = parsePlan(dpSgdPlanJson());
    const site = parsePlan(fixturePlanJson("wdbc"));

    // Execute and Assert
    expect(() => siteUpdateTraining(dp)).toThrow(/dp-sgd plan.*bug in fedward/);
    expect(() => dpSgdPrivacy(site)).toThrow(/site-update plan.*bug in fedward/);
  });

  const badDpSgd: { what: string; raw: () => Json; path: string; message: RegExp }[] = [
    {
      what: "epochs",
      raw: () => dpSgdPlanJson({}, { epochs: 2 }),
      path: "training.epochs",
      message: /not used by a dp-sgd plan.*stepsPerRound/,
    },
    {
      what: "a batch size",
      raw: () => dpSgdPlanJson({}, { batchSize: 32 }),
      path: "training.batchSize",
      message: /not used by a dp-sgd plan/,
    },
    {
      what: "no steps per round",
      raw: () => dpSgdPlanJson({ stepsPerRound: undefined }),
      path: "privacy.stepsPerRound",
      message: /required in a dp-sgd plan/,
    },
    {
      what: "zero steps per round",
      raw: () => dpSgdPlanJson({ stepsPerRound: 0 }),
      path: "privacy.stepsPerRound",
      message: /./,
    },
    {
      what: "both a sampling rate and an expected batch size",
      raw: () => dpSgdPlanJson({ samplingRate: 0.1 }),
      path: "privacy.expectedBatchSize",
      message: /cannot be given with privacy.samplingRate/,
    },
    {
      what: "neither a sampling rate nor an expected batch size",
      raw: () => dpSgdPlanJson({ expectedBatchSize: undefined }),
      path: "privacy.samplingRate",
      message: /required in a dp-sgd plan, unless privacy.expectedBatchSize is given/,
    },
    {
      what: "a sampling rate above 1",
      raw: () => dpSgdPlanJson({ expectedBatchSize: undefined, samplingRate: 1.5 }),
      path: "privacy.samplingRate",
      message: /./,
    },
    {
      what: "a sampling rate of 0",
      raw: () => dpSgdPlanJson({ expectedBatchSize: undefined, samplingRate: 0 }),
      path: "privacy.samplingRate",
      message: /./,
    },
    {
      what: "a fractional expected batch size",
      raw: () => dpSgdPlanJson({ expectedBatchSize: 2.5 }),
      path: "privacy.expectedBatchSize",
      message: /./,
    },
    {
      what: "an unknown mechanism",
      raw: () => dpSgdPlanJson({ mechanism: "dp-ftrl" }),
      path: "privacy.mechanism",
      message: /./,
    },
    {
      what: "a momentum without the momentum optimizer",
      raw: () => dpSgdPlanJson({}, { momentum: 0.9 }),
      path: "training.momentum",
      message: /only with optimizer "momentum", not "sgd"/,
    },
    {
      what: "a momentum of 1",
      raw: () => dpSgdPlanJson({}, { optimizer: "momentum", momentum: 1 }),
      path: "training.momentum",
      message: /./,
    },
  ];

  it.each(badDpSgd)("refuse $what, naming $path", ({ raw, path, message }) => {
    // Execute
    const error = refusal(raw());

    // Assert
    expect(error.message).toMatch(new RegExp(`${path.replaceAll(".", "\\.")}: `));
    expect(error.message).toMatch(message);
  });

  it.each([
    [
      "training.epochs",
      (p: Json) => delete (p.training as Json).epochs,
      /is required \(unless privacy.mechanism/,
    ],
    [
      "privacy.stepsPerRound",
      (p: Json) => ((p.privacy as Json).stepsPerRound = 4),
      /used only by a dp-sgd plan/,
    ],
    [
      "privacy.samplingRate",
      (p: Json) => ((p.privacy as Json).samplingRate = 0.5),
      /used only by a dp-sgd plan/,
    ],
    [
      "training.optimizer",
      (p: Json) => ((p.training as Json).optimizer = "momentum"),
      /"momentum", which only a dp-sgd plan trains with/,
    ],
  ])("refuse %s in a site-update plan the wrong way round", (path, mutate, message) => {
    // Prepare
    const raw = fixturePlanJson("wdbc");
    mutate(raw);

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain(`${path}: `);
    expect(error.message).toMatch(message);
  });

  it("accept the momentum optimizer with and without training.momentum", () => {
    // Execute
    const withDefault = parsePlan(dpSgdPlanJson({}, { optimizer: "momentum" }));
    const withValue = parsePlan(dpSgdPlanJson({}, { optimizer: "momentum", momentum: 0.5 }));

    // Assert: the default is not written into the plan (its hash stays as written)
    expect(withDefault.training).toEqual({ optimizer: "momentum", learningRate: 1 });
    expect(withValue.training.momentum).toBe(0.5);
  });
});

describe("csv.patientColumn and privacyUnit", () => {
  it("make a CSV plan's unit the patient when it names a patient column, else the row", () => {
    // Prepare
    const rows = dpSgdPlanJson();
    const patients = { ...dpSgdPlanJson(), csv: { patientColumn: "patient_id" } };

    // Execute and Assert
    expect(privacyUnit(parsePlan(rows))).toBe("row");
    expect(privacyUnit(parsePlan(patients))).toBe("patient");
    expect(parsePlan(patients).csv).toEqual({ patientColumn: "patient_id" });
  });

  it("make a cohort's unit the patient, a DICOM plan's the patient and a PNG/JPEG plan's the image", () => {
    // Prepare
    const dicom = cnnPlanJson();
    const png = cnnPlanJson();
    png.image = { ...(png.image as Json), source: "images", labels: { key: "folder" } };
    delete (png.image as Json).frame;

    // Execute and Assert
    expect(privacyUnit(parsePlan(fixturePlanJson("synthea-hypertension")))).toBe("patient");
    expect(privacyUnit(parsePlan(dicom))).toBe("patient");
    expect(privacyUnit(parsePlan(png))).toBe("image");
    expect(privacyUnit(parsePlan(fixturePlanJson("digits")))).toBe("image");
  });

  it.each([
    ["a feature column", "mean radius", /is also a feature column/],
    ["the label column", "diagnosis", /is also the label column/],
  ])("refuse a patient column that is %s", (_what, column, message) => {
    // Prepare
    const raw = { ...dpSgdPlanJson(), csv: { patientColumn: column } };

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain("csv.patientColumn: ");
    expect(error.message).toMatch(message);
  });

  it("needs a listed csv.columns to list the patient column", () => {
    // Prepare
    const raw = fixturePlanJson("wdbc");
    const columns = [...(raw.features as Json[]).map((f) => f.column as string), "diagnosis"];
    raw.csv = { columns, patientColumn: "mrn" };

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toMatch(/csv\.columns: does not list "mrn"/);
  });

  it("refuse a patient column in a cohort plan (it reads no CSV)", () => {
    // Prepare
    const raw = { ...fixturePlanJson("synthea-hypertension"), csv: { patientColumn: "id" } };

    // Execute
    const error = refusal(raw);

    // Assert
    expect(error.message).toContain("csv: ");
  });
});

describe("the demo plans in public/demo", () => {
  it.each(["wdbc-plan.json", "synthea-hypertension-plan.json", "digits-plan.json"])("parse: %s", (file) => {
    expect(() => parsePlan(JSON.parse(readFileSync(`public/demo/${file}`, "utf8")))).not.toThrow();
  });
});
