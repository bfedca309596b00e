import { type Plan, parsePlan } from "../../../src/core/plan";

type Json = Record<string, unknown>;

/**
 * A valid image plan with a CNN, as raw JSON (before parsePlan): 28×28 greyscale DICOM, conv 8 (pool 2),
 * conv 16 (stride 2, pool 2), dense 32. Sizes: 28 → 28 → 14 → 7 → 3, so Flatten gives 3·3·16 = 144.
 */
export function cnnPlanJson(): Json {
  return {
    id: "cnn-test",
    title: "CNN test plan",
    features: [],
    image: {
      width: 28,
      height: 28,
      channels: 1,
      window: { center: 40, width: 400 },
      frame: "middle",
      source: "dicom",
      labels: { key: "SOPInstanceUID", column: "sop_uid", labelColumn: "finding" },
    },
    label: { positive: "abnormal", negative: "normal" },
    model: {
      type: "cnn",
      conv: [
        { filters: 8, kernel: 3, pool: 2 },
        { filters: 16, kernel: 3, stride: 2, pool: 2 },
      ],
      dense: [32],
      activation: "relu",
    },
    training: { epochs: 1, batchSize: 16, optimizer: "adam", learningRate: 0.01 },
    privacy: { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
    rounds: 3,
    minSites: 2,
  };
}

/** A parsed image plan of the given size and model (PNG folders labelled by folder name). */
export function imagePlan(
  image: { width: number; height: number; channels: 1 | 3 },
  model: Json,
  training: Json = { epochs: 1, batchSize: 16, optimizer: "adam", learningRate: 0.01 },
): Plan {
  const raw = cnnPlanJson();
  raw.image = { ...image, source: "images", labels: { key: "folder" } };
  raw.model = model;
  raw.training = training;
  return parsePlan(raw);
}
