/// <reference path="./modules.d.ts" />
/**
 * The compressed-pixel decoders, each loaded on first use (a CSV or uncompressed DICOM import loads none).
 * libjpeg-turbo (8-bit JPEG), CharLS (JPEG-LS) and OpenJPEG (JPEG 2000) are Cornerstone's emscripten
 * builds: their JS glue finds its .wasm by itself in Node (the file beside the glue in node_modules), but a
 * Vite-bundled worker must be told where the app serves it, with configureDicomCodecs (wasm-urls.ts has
 * the URLs Vite emits). JPEG lossless is plain JS (jpeg-lossless-decoder-js).
 */

export type WasmCodec = "libjpeg-turbo" | "charls" | "openjpeg";

/** A .wasm's URL (served by the app, never a CDN) or its bytes. */
export type WasmSource = string | URL | ArrayBuffer | Uint8Array;

export interface DicomCodecOptions {
  wasm?: Partial<Record<WasmCodec, WasmSource>>;
}

/** What every codec hands back: samples as bytes (2 per sample above 8 bits, little endian) and their shape. */
export interface CodecOutput {
  width: number;
  height: number;
  components: number;
  bitsPerSample: number;
  signed: boolean;
  /** Decoded bytes, owned by the caller (copied out of the codec's memory). */
  bytes: Uint8Array;
  /** JPEG-LS interleave mode 0 lays components out one plane after another. */
  planar: boolean;
  /** Set by a decoder that leaves 3 components as YCbCr (true) or says they are RGB (false). */
  ycbcr?: boolean;
}

interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned?: boolean;
  };
  delete(): void;
}

interface LoadedCodec {
  create(): WasmDecoder & { getInterleaveMode?(): number };
  message(thrown: unknown): string;
  /** Messages the codec printed while decoding (OpenJPEG reports errors this way). */
  printed: string[];
}

let wasmSources: Partial<Record<WasmCodec, WasmSource>> = {};
const loading = new Map<WasmCodec, Promise<LoadedCodec>>();

/** Where the .wasm files come from; call before the first compressed file (later calls affect codecs not yet loaded). */
export function configureDicomCodecs(options: DicomCodecOptions): void {
  wasmSources = { ...wasmSources, ...options.wasm };
}

function moduleOptions(codec: WasmCodec, printed: string[]) {
  const source = wasmSources[codec];
  // OpenJPEG prints its progress ([INFO]) and its errors; keep the errors for the message, drop the rest.
  const keep = (text: string) => {
    if (text.startsWith("[INFO]") || text.trim() === "") return;
    printed.push(text.replace(/^\[(ERROR|WARNING)\]\s*/, "").trim());
    if (printed.length > 20) printed.shift();
  };
  const base = { print: keep, printErr: keep };
  if (source === undefined) return base;
  if (typeof source === "string" || source instanceof URL) {
    const url = String(source);
    return {
      ...base,
      locateFile: (path: string, prefix: string) => (path.endsWith(".wasm") ? url : prefix + path),
    };
  }
  return { ...base, wasmBinary: source instanceof Uint8Array ? source : new Uint8Array(source) };
}

function load(codec: WasmCodec): Promise<LoadedCodec> {
  let pending = loading.get(codec);
  if (pending === undefined) {
    pending = instantiate(codec);
    loading.set(codec, pending);
    // A failed load (say, the .wasm URL 404s) must not stick: the next file tries again.
    pending.catch(() => loading.delete(codec));
  }
  return pending;
}

async function instantiate(codec: WasmCodec): Promise<LoadedCodec> {
  const printed: string[] = [];
  const options = moduleOptions(codec, printed);
  if (codec === "libjpeg-turbo") {
    const factory = (await import("@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs")).default;
    const m = await factory(options);
    return {
      create: () => new m.JPEGDecoder(),
      message: (t) => exceptionText(t, m.getExceptionMessage),
      printed,
    };
  }
  if (codec === "charls") {
    const factory = (await import("@cornerstonejs/codec-charls/decodewasmjs")).default;
    const m = await factory(options);
    return {
      create: () => new m.JpegLSDecoder(),
      message: (t) => exceptionText(t, m.getExceptionMessage),
      printed,
    };
  }
  const factory = (await import("@cornerstonejs/codec-openjpeg/decodewasmjs")).default;
  const m = await factory(options);
  return {
    create: () => new m.J2KDecoder(),
    message: (t) => exceptionText(t, m.getExceptionMessage),
    printed,
  };
}

function exceptionText(
  thrown: unknown,
  lookup: ((pointer: number) => string | string[]) | undefined,
): string {
  if (typeof thrown === "number") {
    try {
      const text = lookup?.(thrown);
      if (text !== undefined) return Array.isArray(text) ? text.join(": ") : text;
    } catch {
      // fall through to the number
    }
    return `native exception ${thrown}`;
  }
  return thrown instanceof Error ? thrown.message : String(thrown);
}

/** Decodes one frame with a WebAssembly codec. Throws Error with the codec's own words on failure. */
export async function decodeWithWasm(codec: WasmCodec, encoded: Uint8Array): Promise<CodecOutput> {
  const loaded = await load(codec);
  loaded.printed.length = 0;
  let decoder: ReturnType<LoadedCodec["create"]> | undefined;
  try {
    decoder = loaded.create();
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const bytes = decoder.getDecodedBuffer().slice();
    if (info.width === 0 || info.height === 0 || bytes.length === 0) {
      throw new Error(loaded.printed.join("; ") || "the codec decoded no pixels");
    }
    return {
      width: info.width,
      height: info.height,
      components: info.componentCount,
      bitsPerSample: info.bitsPerSample,
      signed: info.isSigned ?? false,
      bytes,
      planar: codec === "charls" && info.componentCount > 1 && decoder.getInterleaveMode?.() === 0,
    };
  } catch (thrown) {
    if (thrown instanceof WebAssembly.RuntimeError) loading.delete(codec); // an aborted module is unusable
    const printed = loaded.printed.length > 0 ? ` (${loaded.printed.join("; ")})` : "";
    throw new Error(`${loaded.message(thrown)}${printed}`);
  } finally {
    try {
      decoder?.delete();
    } catch {
      // the module may be gone after an abort
    }
  }
}

/** JPEG lossless (processes 14 and 15) with the pure-JS decoder; samples of more than 8 bits come as 2 bytes. */
export async function decodeJpegLossless(encoded: Uint8Array, bytesPerSample: 1 | 2): Promise<CodecOutput> {
  const { Decoder } = await import("@cornerstonejs/jpeg-lossless-decoder-js");
  const decoder = new Decoder();
  const buffer = encoded.buffer.slice(
    encoded.byteOffset,
    encoded.byteOffset + encoded.byteLength,
  ) as ArrayBuffer;
  const out = decoder.decode(buffer, 0, buffer.byteLength, bytesPerSample);
  return {
    width: decoder.frame.dimX,
    height: decoder.frame.dimY,
    components: decoder.frame.numComp,
    bitsPerSample: decoder.frame.precision,
    signed: false,
    bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice(),
    planar: false,
  };
}
