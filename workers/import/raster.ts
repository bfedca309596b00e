import type { DecodedFrame } from "../../src/core/image/frame";
import { ImportError } from "./parser";

/**
 * PNG and JPEG files of an image folder, decoded in the import worker with the browser's own decoders
 * (createImageBitmap, then OffscreenCanvas to read the pixels), into the same DecodedFrame the DICOM
 * decoders give, so one pixel pipeline (src/core/image/model-input.ts) sizes and scales both.
 */

export type RasterKind = "png" | "jpeg";

/** Longest side decoded: a larger image would take hundreds of MB of pixels before it is shrunk. */
const MAX_SIDE = 16_384;

/** PNG (89 50 4E 47 0D 0A 1A 0A) or JPEG (FF D8 FF), by magic bytes, not by name. */
export function rasterKind(head: Uint8Array): RasterKind | undefined {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.every((b, i) => head[i] === b)) return "png";
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  return undefined;
}

/** A PNG's size from its IHDR chunk (bytes 16..23, big endian), read before decoding anything. */
export function pngSize(head: Uint8Array): { width: number; height: number } | undefined {
  if (head.length < 24) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * Decodes the file's pixels as stored: no colour-space conversion and no premultiplied alpha, EXIF
 * orientation applied. Transparent pixels are composited over black (alpha scales the colour). A file
 * whose three channels are equal everywhere comes out as one grey channel (MONOCHROME2), so a grey plan
 * and a colour plan read the same file the same way as a DICOM image would be read.
 */
export async function decodeRaster(file: Blob, name: string, head: Uint8Array): Promise<DecodedFrame> {
  if (typeof createImageBitmap !== "function" || typeof OffscreenCanvas !== "function") {
    throw new Error("This browser cannot decode images in a worker (no createImageBitmap/OffscreenCanvas).");
  }
  const size = rasterKind(head) === "png" ? pngSize(head) : undefined;
  if (size && (size.width > MAX_SIDE || size.height > MAX_SIDE)) {
    throw new ImportError(
      `${name} is ${size.width}×${size.height} pixels; images up to ${MAX_SIDE} pixels a side are read. Shrink it first.`,
    );
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw new ImportError(
      `${name} could not be decoded as a ${rasterKind(head)?.toUpperCase() ?? "PNG or JPEG"} image: it is damaged or truncated. Export it again.`,
    );
  }
  const { width, height } = bitmap;
  if (width > MAX_SIDE || height > MAX_SIDE) {
    bitmap.close();
    throw new ImportError(
      `${name} is ${width}×${height} pixels; images up to ${MAX_SIDE} pixels a side are read. Shrink it first.`,
    );
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  if (!context) throw new Error("OffscreenCanvas gave no 2d context in the import worker.");
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  return frameFromRgba(rgba, width, height);
}

/** RGBA bytes → an 8-bit DecodedFrame: grey when R = G = B everywhere, else RGB; alpha over black. */
export function frameFromRgba(
  rgba: Uint8ClampedArray | Uint8Array,
  width: number,
  height: number,
): DecodedFrame {
  const pixels = width * height;
  let grey = true;
  for (let p = 0; p < pixels && grey; p++) {
    const i = 4 * p;
    grey = rgba[i] === rgba[i + 1] && rgba[i] === rgba[i + 2];
  }
  const channels = grey ? 1 : 3;
  const samples = new Uint8Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    const i = 4 * p;
    const alpha = rgba[i + 3] as number;
    for (let c = 0; c < channels; c++) {
      const v = rgba[i + c] as number;
      samples[p * channels + c] = alpha === 255 ? v : Math.round((v * alpha) / 255);
    }
  }
  return {
    rows: height,
    columns: width,
    samplesPerPixel: channels,
    bitsAllocated: 8,
    bitsStored: 8,
    highBit: 7,
    pixelRepresentation: 0,
    photometric: grey ? "MONOCHROME2" : "RGB",
    planarConfiguration: 0,
    samples,
    rescaleSlope: 1,
    rescaleIntercept: 0,
  };
}
