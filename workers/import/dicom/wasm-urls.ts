/**
 * The codecs' .wasm files as URLs of the app itself: Vite copies each into dist/assets with a hashed name
 * and this module gets its URL (no CDN). Vite-only (the `?url` suffix); Node needs none of this, since the
 * emscripten glue finds its .wasm beside itself in node_modules. Importing the URLs loads no WebAssembly:
 * each file is fetched when its codec is first needed.
 *
 * In the import worker: `configureDicomCodecs({ wasm: dicomWasmUrls })` before the first DICOM file.
 */
import charls from "@cornerstonejs/codec-charls/decodewasm?url";
import libjpegTurbo from "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm?url";
import openjpeg from "@cornerstonejs/codec-openjpeg/decodewasm?url";
import type { WasmCodec } from "./codecs";

export const dicomWasmUrls: Record<WasmCodec, string> = {
  "libjpeg-turbo": libjpegTurbo,
  charls,
  openjpeg,
};
