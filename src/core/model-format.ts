import { inputWidth, type Plan, weightShapes } from "./plan";
import { CryptoRandom } from "./random";

/**
 * The plan's model as a Keras/TF.js layers topology. The training worker builds its model from this very
 * JSON (tf.models.modelFromJSON) and the coordinator writes it into the downloadable model.json, so the
 * weight order of the flat vectors is defined in one place.
 */
export function modelTopology(plan: Plan) {
  const units = [...plan.model.hidden, 1];
  const layers = units.map((u, i) => ({
    class_name: "Dense",
    config: {
      name: `dense_${i + 1}`,
      trainable: true,
      dtype: "float32",
      units: u,
      activation: i === units.length - 1 ? "sigmoid" : plan.model.activation,
      use_bias: true,
      kernel_initializer: { class_name: "GlorotUniform", config: { seed: null } },
      bias_initializer: { class_name: "Zeros", config: {} },
      ...(i === 0 ? { batch_input_shape: [null, inputWidth(plan)] } : {}),
    },
  }));
  return {
    class_name: "Sequential",
    config: { name: `fedward_${plan.id.replace(/-/g, "_")}`, layers },
    keras_version: "tfjs-layers 4.22.0",
    backend: "tensor_flow.js",
  };
}

export function weightNames(plan: Plan): string[] {
  const names: string[] = [];
  for (let i = 0; i < plan.model.hidden.length + 1; i++)
    names.push(`dense_${i + 1}/kernel`, `dense_${i + 1}/bias`);
  return names;
}

/** model.json for TF.js `tf.loadLayersModel`, pointing at a weights file next to it. */
export function tfjsModelJson(plan: Plan, weightsPath = "weights.bin") {
  const shapes = weightShapes(plan);
  const names = weightNames(plan);
  return {
    format: "layers-model",
    generatedBy: "fedward",
    convertedBy: null,
    modelTopology: modelTopology(plan),
    weightsManifest: [
      {
        paths: [weightsPath],
        weights: shapes.map((shape, i) => ({ name: names[i] as string, shape, dtype: "float32" })),
      },
    ],
  };
}

/** The float32 little-endian bytes of a weights file (TF.js weights are little-endian). */
export function tfjsWeightsBin(weights: Float32Array): Uint8Array {
  const bytes = new Uint8Array(weights.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < weights.length; i++) view.setFloat32(4 * i, weights[i] as number, true);
  return bytes;
}

/**
 * Initial global weights: Glorot-uniform kernels (Glorot & Bengio 2010, eq. 16), zero biases, drawn by the
 * coordinator so that every site starts from the same model.
 */
export function initialWeights(plan: Plan, rng: CryptoRandom = new CryptoRandom()): Float32Array {
  const shapes = weightShapes(plan);
  const total = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const shape of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 2) {
      const limit = Math.sqrt(6 / ((shape[0] as number) + (shape[1] as number)));
      for (let i = 0; i < size; i++)
        out[offset + i] = ((rng.uint32() + 0.5) / 4294967296) * 2 * limit - limit;
    }
    offset += size;
  }
  return out;
}
