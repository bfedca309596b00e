import { toModelInput } from "../../../src/core/image/model-input";
import { resize } from "../../../src/core/image/resize";
import { storedValues } from "../../../src/core/image/stored-values";
import { readDicom } from "./read";
import { writeDicom } from "./write";

/**
 * The DICOM import's speed on its common case: a 512×512 16-bit CT slice, explicit VR little endian, read,
 * decoded, rescaled to HU, windowed (the plan's fixed window) and resized to 64×64. Callable in Node
 * (test/bench/dicom.ts) and in a browser worker (the issue asks for ≥ 50 slices/s there).
 */
export interface DicomBenchResult {
  slices: number;
  /** Wall time of all slices. */
  ms: number;
  slicesPerSecond: number;
  /** Of ms: parsing and decoding (readDicom), and the pixel maths (toModelInput). */
  readMs: number;
  modelInputMs: number;
}

const SIDE = 512;
const WINDOW = { center: 40, width: 400 };

/**
 * An in-memory CT file: 512×512, 16 bits signed, Rescale Intercept -1024. With `source` (a DICOM file's
 * bytes, e.g. pydicom's 128×128 CT_small.dcm) its first frame's stored values are upsampled bilinearly to
 * 512×512; without, a deterministic phantom (air, body, lungs, a bone ring, ±20 HU noise) is drawn.
 */
export async function synthesizeCtSlice(source?: Uint8Array): Promise<Uint8Array> {
  let pixels: Int16Array;
  if (source !== undefined) {
    const read = await readDicom(source, { fileName: "benchmark source" });
    if (read.kind !== "image" || read.frame.samplesPerPixel !== 1)
      throw new Error("the benchmark source must be a grey image");
    const values = Float32Array.from(storedValues(read.frame));
    const big = resize(values, read.rows, read.columns, 1, SIDE, SIDE);
    pixels = Int16Array.from(big, (v) => Math.round(v));
  } else {
    pixels = phantom();
  }
  const bytes = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return writeDicom([
    { tag: 0x00080016, vr: "UI", value: "1.2.840.10008.5.1.4.1.1.2" },
    { tag: 0x00080018, vr: "UI", value: "2.25.314159265358979" },
    { tag: 0x00080060, vr: "CS", value: "CT" },
    { tag: 0x00280002, vr: "US", value: [1] },
    { tag: 0x00280004, vr: "CS", value: "MONOCHROME2" },
    { tag: 0x00280010, vr: "US", value: [SIDE] },
    { tag: 0x00280011, vr: "US", value: [SIDE] },
    { tag: 0x00280100, vr: "US", value: [16] },
    { tag: 0x00280101, vr: "US", value: [16] },
    { tag: 0x00280102, vr: "US", value: [15] },
    { tag: 0x00280103, vr: "US", value: [1] },
    { tag: 0x00281052, vr: "DS", value: "-1024" },
    { tag: 0x00281053, vr: "DS", value: "1" },
    { tag: 0x7fe00010, vr: "OW", value: bytes },
  ]);
}

/** Reads n copies of the synthesized slice to 64×64×1 model input; returns the timings. */
export async function benchDicomSlices(n: number, source?: Uint8Array): Promise<DicomBenchResult> {
  const file = await synthesizeCtSlice(source);
  let readMs = 0;
  let modelInputMs = 0;
  let checksum = 0;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const read = await readDicom(file, { fileName: "bench.dcm" });
    const t1 = performance.now();
    if (read.kind !== "image") throw new Error("the synthesized slice did not read as an image");
    const input = toModelInput(read.frame, { width: 64, height: 64, channels: 1, window: WINDOW });
    modelInputMs += performance.now() - t1;
    readMs += t1 - t0;
    checksum += input[2080] as number; // keeps the work observable
  }
  const ms = performance.now() - started;
  if (!Number.isFinite(checksum)) throw new Error("the benchmark produced a non-finite value");
  return { slices: n, ms, slicesPerSecond: (n / ms) * 1000, readMs, modelInputMs };
}

function phantom(): Int16Array {
  const out = new Int16Array(SIDE * SIDE);
  let seed = 12345;
  const noise = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return ((seed >>> 16) % 41) - 20;
  };
  const inside = (x: number, y: number, cx: number, cy: number, rx: number, ry: number) =>
    ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let hu = -1000;
      if (inside(x, y, 256, 256, 220, 170)) hu = 40;
      if (inside(x, y, 180, 240, 60, 90) || inside(x, y, 332, 240, 60, 90)) hu = -800;
      if (inside(x, y, 256, 380, 30, 30) && !inside(x, y, 256, 380, 18, 18)) hu = 700;
      out[y * SIDE + x] = hu + 1024 + noise();
    }
  }
  return out;
}
