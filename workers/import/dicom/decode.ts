import type { DecodedFrame, Photometric } from "../../../src/core/image/frame";
import { type CodecOutput, decodeJpegLossless, decodeWithWasm } from "./codecs";
import type { ParsedDicom } from "./dataset";
import { DicomError } from "./errors";
import { encapsulatedFrame, nativeFrame } from "./frames";
import { decodeJpegDct, jpegFrameHeader, streamSaysYcbcr } from "./jpeg-dct";
import type { PixelInfo } from "./pixel-info";
import { decodeRle } from "./rle";
import { describeTransferSyntax, type PixelEncoding } from "./transfer-syntax";

/** Largest compressed frame decoded, in samples (512 MiB at 16 bits): a small file cannot claim gigabytes. */
const MAX_SAMPLES = 2 ** 28;

/** Frame `index` of the file's Pixel Data as raw sample words plus what the pixel maths needs to read them. */
export async function decodeFrame(
  parsed: ParsedDicom,
  info: PixelInfo,
  index: number,
): Promise<DecodedFrame> {
  const { fileName, syntax } = parsed;
  const element = parsed.pixelData;
  if (element === undefined)
    throw new DicomError(fileName, "missing-attribute", "it has no Pixel Data (7FE0,0010)");
  if (syntax === undefined) {
    throw new DicomError(
      fileName,
      "unsupported-transfer-syntax",
      `its pixels are encoded with transfer syntax ${describeTransferSyntax(parsed.transferSyntaxUid)}, which this ` +
        "importer cannot decode; convert the file to an uncompressed or a JPEG, JPEG-LS, JPEG 2000 or RLE syntax",
    );
  }
  const encapsulated = element.hadUndefinedLength === true;
  if (encapsulated !== (syntax.pixels !== "native")) {
    throw new DicomError(
      fileName,
      "bad-pixel-data",
      encapsulated
        ? `its Pixel Data is encapsulated (compressed) but its transfer syntax ${describeTransferSyntax(syntax.uid)} is not` +
            (parsed.transferSyntaxFrom === "sniffed"
              ? ", and the file does not say which compression it used"
              : "")
        : `its transfer syntax ${describeTransferSyntax(syntax.uid)} is compressed but its Pixel Data is not encapsulated`,
      element.dataOffset,
    );
  }
  const frame = (
    samples: DecodedFrame["samples"],
    photometric: Photometric,
    planar: 0 | 1,
  ): DecodedFrame => ({
    rows: info.rows,
    columns: info.columns,
    samplesPerPixel: info.samplesPerPixel,
    bitsAllocated: info.bitsAllocated,
    bitsStored: info.bitsStored,
    highBit: info.highBit,
    pixelRepresentation: info.pixelRepresentation,
    photometric,
    planarConfiguration: info.samplesPerPixel === 1 ? 0 : planar,
    samples,
    rescaleSlope: info.rescaleSlope,
    rescaleIntercept: info.rescaleIntercept,
  });
  const pi = info.photometricInterpretation;
  if (syntax.pixels === "native") {
    return frame(
      nativeFrame(parsed, element, info, index),
      asWritten(info, fileName),
      info.planarConfiguration,
    );
  }
  if (info.rows * info.columns * info.samplesPerPixel > MAX_SAMPLES) {
    throw new DicomError(
      fileName,
      "unsupported",
      `its ${info.columns}×${info.rows} frames are larger than this importer decodes (${MAX_SAMPLES} samples)`,
    );
  }
  const encoded = encapsulatedFrame(parsed, element, info, index);
  const failed = (thrown: unknown): DicomError =>
    new DicomError(
      fileName,
      "decode-failed",
      `frame ${index} could not be decoded as ${syntax.name} (${thrown instanceof Error ? thrown.message : String(thrown)})`,
      element.dataOffset,
    );
  if (syntax.pixels === "rle") {
    if (pi === "YBR_FULL_422") {
      throw new DicomError(fileName, "bad-attribute", "RLE Lossless cannot hold YBR_FULL_422 (PS3.5 G.2)");
    }
    const photometric = asWritten(info, fileName);
    try {
      return frame(decodeRle(encoded, info), photometric, 0);
    } catch (thrown) {
      throw failed(thrown);
    }
  }
  let out: CodecOutput;
  try {
    out = await decodeCompressed(syntax.pixels, encoded, info);
  } catch (thrown) {
    throw failed(thrown);
  }
  if (out.width !== info.columns || out.height !== info.rows || out.components !== info.samplesPerPixel) {
    throw new DicomError(
      fileName,
      "decode-failed",
      `frame ${index} decodes to ${out.width}×${out.height} with ${out.components} component(s), but the file ` +
        `says ${info.columns}×${info.rows} with ${info.samplesPerPixel}`,
      element.dataOffset,
    );
  }
  return frame(
    toWords(out, info.bitsAllocated, fileName),
    decodedPhotometric(syntax.pixels, pi, out),
    out.planar ? 1 : 0,
  );
}

/** The Photometric Interpretation of samples that no codec transformed (uncompressed, RLE), checked. */
function asWritten(info: PixelInfo, fileName: string): Photometric {
  const pi = info.photometricInterpretation;
  if (pi === "YBR_ICT" || pi === "YBR_RCT") {
    throw new DicomError(
      fileName,
      "bad-attribute",
      `${pi} exists only for JPEG 2000, but its pixels are not JPEG 2000`,
    );
  }
  if (pi === "YBR_FULL_422" && (info.columns % 2 !== 0 || info.planarConfiguration !== 0)) {
    throw new DicomError(
      fileName,
      "bad-attribute",
      "YBR_FULL_422 needs an even number of columns and Planar Configuration 0 (PS3.3 C.7.6.3.1.2)",
    );
  }
  return pi as Photometric;
}

async function decodeCompressed(
  pixels: PixelEncoding,
  encoded: Uint8Array,
  info: PixelInfo,
): Promise<CodecOutput> {
  switch (pixels) {
    case "jpeg-baseline":
    case "jpeg-extended": {
      const header = jpegFrameHeader(encoded);
      if (header === undefined) throw new Error("the frame holds no JPEG frame header");
      if (
        header.width !== info.columns ||
        header.height !== info.rows ||
        header.components !== info.samplesPerPixel
      ) {
        throw new Error(
          `the JPEG stream is ${header.width}×${header.height} with ${header.components} component(s), ` +
            `but the file says ${info.columns}×${info.rows} with ${info.samplesPerPixel}`,
        );
      }
      if (header.process === 3) return decodeJpegLossless(encoded, info.bitsAllocated > 8 ? 2 : 1);
      // A 3-component stream that says nothing of its colour space is YCbCr to libjpeg; then DICOM's
      // Photometric Interpretation decides (RGB: coded without the transform, PS3.5 8.2.1), and an RGB stream
      // is decoded without the transform by our decoder, since libjpeg-turbo's build cannot be told to.
      const says = header.components === 3 ? streamSaysYcbcr(header) : false;
      const ycbcr = says ?? info.photometricInterpretation !== "RGB";
      if (header.precision <= 8 && (header.components !== 3 || says !== undefined || ycbcr)) {
        return decodeWithWasm("libjpeg-turbo", encoded);
      }
      const image = decodeJpegDct(encoded);
      const data = image.data;
      return {
        width: image.width,
        height: image.height,
        components: image.components,
        bitsPerSample: image.precision,
        signed: false,
        bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        planar: false,
        ycbcr: image.components === 3 ? ycbcr : undefined,
      };
    }
    case "jpeg-lossless":
      return decodeJpegLossless(encoded, info.bitsAllocated > 8 ? 2 : 1);
    case "jpeg-ls":
      // CharLS spends tens of seconds on a stream cut short before it gives up; a whole stream ends with EOI.
      if (!endsWithEoi(encoded))
        throw new Error("the JPEG-LS stream is cut short: it does not end with an EOI marker (FFD9)");
      return decodeWithWasm("charls", encoded);
    case "jpeg-2000":
      return decodeWithWasm("openjpeg", encoded);
    default:
      throw new Error(`no decoder for ${pixels}`);
  }
}

/** Whether a JPEG-family stream ends with EOI (FF D9), after at most a few padding zeros (PS3.5 A.4). */
function endsWithEoi(stream: Uint8Array): boolean {
  let end = stream.length;
  while (end > 2 && stream[end - 1] === 0 && stream.length - end < 8) end--;
  return stream[end - 2] === 0xff && stream[end - 1] === 0xd9;
}

/**
 * What the decoded samples are. libjpeg-turbo turns YCbCr into RGB; our 12-bit decoder leaves YCbCr for the
 * pixel maths; OpenJPEG undoes JPEG 2000's component transform (YBR_ICT / YBR_RCT come out RGB, PS3.5
 * 8.2.4); lossless JPEG, JPEG-LS and RLE keep the samples as they were, at full resolution.
 */
function decodedPhotometric(pixels: PixelEncoding, pi: string, out: CodecOutput): Photometric {
  if (pi === "MONOCHROME1" || pi === "MONOCHROME2") return pi;
  if (out.ycbcr !== undefined) return out.ycbcr ? "YBR_FULL" : "RGB";
  if (pixels === "jpeg-baseline" || pixels === "jpeg-extended") return "RGB";
  if (pi === "YBR_FULL" || pi === "YBR_FULL_422") return "YBR_FULL";
  return "RGB";
}

/** Codec bytes → words of the file's Bits Allocated (OpenJPEG gives 8-bit data as bytes even in 16-bit files). */
function toWords(
  out: CodecOutput,
  bitsAllocated: 8 | 16 | 32,
  fileName: string,
): Uint8Array | Uint16Array | Uint32Array {
  const count = out.width * out.height * out.components;
  const bytesPerSample = out.bitsPerSample > 8 ? 2 : 1;
  if (out.bytes.length < count * bytesPerSample) {
    throw new DicomError(
      fileName,
      "decode-failed",
      `the decoder returned ${out.bytes.length} bytes for ${count} samples`,
    );
  }
  if (bytesPerSample * 8 > bitsAllocated) {
    throw new DicomError(
      fileName,
      "bad-pixel-data",
      `its compressed samples have ${out.bitsPerSample} bits, more than Bits Allocated ${bitsAllocated}`,
    );
  }
  const source =
    bytesPerSample === 1
      ? out.bytes.subarray(0, count)
      : new Uint16Array(out.bytes.buffer, out.bytes.byteOffset, count);
  if (bitsAllocated === 8) return source as Uint8Array;
  if (bitsAllocated === 16) return source instanceof Uint16Array ? source : Uint16Array.from(source);
  return Uint32Array.from(source);
}
