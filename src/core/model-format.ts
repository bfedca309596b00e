import { inputShape, inputWidth, type Plan, weightShapes } from "./plan";
import { CryptoRandom } from "./random";

/** One layer of a Keras/TF.js layers topology (tfjs turns the snake_case keys into its camelCase args). */
export interface KerasLayer {
  class_name: string;
  config: { name: string; [key: string]: unknown };
}

const glorot = { class_name: "GlorotUniform", config: { seed: null } };
const zeros = { class_name: "Zeros", config: {} };

/**
 * The plan's model as a Keras/TF.js layers topology. The training worker builds its model from this very
 * JSON (tf.models.modelFromJSON) and the coordinator writes it into the downloadable model.json, so the
 * weight order of the flat vectors is defined in one place. A CNN is Conv2D (padding "same") with an
 * optional MaxPooling2D after each, Flatten, Dense layers; an MLP on an image plan flattens the image
 * first, so that every image model takes [height, width, channels] like the pixel pipeline gives them.
 */
export function modelTopology(plan: Plan) {
  const layers: KerasLayer[] = [];
  const base = (name: string) => ({ name, trainable: true, dtype: "float32" });
  const model = plan.model;
  if (model.type === "cnn") {
    let pools = 0;
    model.conv.forEach((c, i) => {
      const stride = c.stride ?? 1;
      layers.push({
        class_name: "Conv2D",
        config: {
          ...base(`conv2d_${i + 1}`),
          filters: c.filters,
          kernel_size: [c.kernel, c.kernel],
          strides: [stride, stride],
          padding: "same",
          data_format: "channels_last",
          dilation_rate: [1, 1],
          activation: model.activation,
          use_bias: true,
          kernel_initializer: glorot,
          bias_initializer: zeros,
        },
      });
      if (c.pool !== undefined)
        layers.push({
          class_name: "MaxPooling2D",
          config: {
            ...base(`max_pooling2d_${++pools}`),
            pool_size: [c.pool, c.pool],
            strides: [c.pool, c.pool],
            padding: "valid",
            data_format: "channels_last",
          },
        });
    });
  }
  if (plan.image)
    layers.push({ class_name: "Flatten", config: { ...base("flatten_1"), data_format: "channels_last" } });
  const units = [...(model.type === "mlp" ? model.hidden : model.dense), 1];
  units.forEach((u, i) => {
    layers.push({
      class_name: "Dense",
      config: {
        ...base(`dense_${i + 1}`),
        units: u,
        activation: i === units.length - 1 ? "sigmoid" : model.activation,
        use_bias: true,
        kernel_initializer: glorot,
        bias_initializer: zeros,
      },
    });
  });
  // The first layer declares the input: unchanged for tabular plans, so their model.json stays as it was.
  const first = layers[0] as KerasLayer;
  first.config.batch_input_shape = [null, ...(plan.image ? inputShape(plan) : [inputWidth(plan)])];
  return {
    class_name: "Sequential",
    config: { name: `fedward_${plan.id.replace(/-/g, "_")}`, layers },
    keras_version: "tfjs-layers 4.22.0",
    backend: "tensor_flow.js",
  };
}

/** Names of the weights, as tfjs names them (layer name / kernel or bias), in getWeights() order. */
export function weightNames(plan: Plan): string[] {
  const layers = modelTopology(plan).config.layers.filter(
    (l) => l.class_name === "Conv2D" || l.class_name === "Dense",
  );
  return layers.flatMap((l) => [`${l.config.name}/kernel`, `${l.config.name}/bias`]);
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
 * coordinator so that every site starts from the same model. A conv kernel [kh, kw, cin, cout] has
 * fan_in = kh·kw·cin and fan_out = kh·kw·cout, as Keras's VarianceScaling computes them.
 */
export function initialWeights(plan: Plan, rng: CryptoRandom = new CryptoRandom()): Float32Array {
  const shapes = weightShapes(plan);
  const total = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const shape of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length >= 2) {
      const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const fanIn = receptive * (shape.at(-2) as number);
      const fanOut = receptive * (shape.at(-1) as number);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++)
        out[offset + i] = ((rng.uint32() + 0.5) / 4294967296) * 2 * limit - limit;
    }
    offset += size;
  }
  return out;
}

/** The plan's model in words, for the page: layers, sizes and the number of weights. */
export function describeModel(plan: Plan): string {
  const m = plan.model;
  if (m.type === "mlp") return `Neural network with hidden layers [${m.hidden.join(", ")}] (${m.activation})`;
  const count = weightShapes(plan).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  const convs = m.conv.map(
    (c) =>
      `${c.filters} filters ${c.kernel}×${c.kernel}${c.stride === 2 ? " stride 2" : ""}` +
      `${c.pool ? `, max pool ${c.pool}×${c.pool}` : ""}`,
  );
  return (
    `Convolutional network: ${convs.join("; ")}; then dense layers [${m.dense.join(", ")}] ` +
    `(${m.activation}), ${count} weights`
  );
}
