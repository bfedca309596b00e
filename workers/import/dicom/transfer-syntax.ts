/** Transfer syntaxes (PS3.5 10 and Annex A; UIDs and names from PS3.6 Annex A). */

export type PixelEncoding =
  | "native"
  | "rle"
  | "jpeg-baseline"
  | "jpeg-extended"
  | "jpeg-lossless"
  | "jpeg-ls"
  | "jpeg-2000";

export interface TransferSyntax {
  uid: string;
  name: string;
  /** How the data set is written. Deflate's is explicit little endian once inflated. */
  explicitVr: boolean;
  littleEndian: boolean;
  deflated: boolean;
  pixels: PixelEncoding;
}

export const IMPLICIT_LITTLE = "1.2.840.10008.1.2";
export const EXPLICIT_LITTLE = "1.2.840.10008.1.2.1";
export const DEFLATED_LITTLE = "1.2.840.10008.1.2.1.99";
export const EXPLICIT_BIG = "1.2.840.10008.1.2.2";

const SUPPORTED: TransferSyntax[] = [
  syntax(IMPLICIT_LITTLE, "Implicit VR Little Endian", "native", { explicitVr: false }),
  syntax(EXPLICIT_LITTLE, "Explicit VR Little Endian", "native"),
  syntax(DEFLATED_LITTLE, "Deflated Explicit VR Little Endian", "native", { deflated: true }),
  syntax(EXPLICIT_BIG, "Explicit VR Big Endian", "native", { littleEndian: false }),
  syntax("1.2.840.10008.1.2.5", "RLE Lossless", "rle"),
  syntax("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", "jpeg-baseline"),
  syntax("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", "jpeg-extended"),
  syntax("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", "jpeg-lossless"),
  syntax(
    "1.2.840.10008.1.2.4.70",
    "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
    "jpeg-lossless",
  ),
  syntax("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", "jpeg-ls"),
  syntax("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", "jpeg-ls"),
  syntax("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", "jpeg-2000"),
  syntax("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", "jpeg-2000"),
];

/** Names of syntaxes we do not decode, so the error says what the file is. */
const UNSUPPORTED_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2.1.98": "Encapsulated Uncompressed Explicit VR Little Endian",
  "1.2.840.10008.1.2.4.52": "JPEG Extended (Process 3 & 5) (retired)",
  "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (retired)",
  "1.2.840.10008.1.2.4.54": "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9) (retired)",
  "1.2.840.10008.1.2.4.55": "JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (retired)",
  "1.2.840.10008.1.2.4.56": "JPEG Full Progression, Non-Hierarchical (Process 11 & 13) (retired)",
  "1.2.840.10008.1.2.4.58": "JPEG Lossless, Non-Hierarchical (Process 15) (retired)",
  "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component Image Compression",
  "1.2.840.10008.1.2.4.94": "JPIP Referenced",
  "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
  "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile / Main Level",
  "1.2.840.10008.1.2.4.101": "MPEG2 Main Profile / High Level",
  "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
  "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
  "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
  "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
  "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
  "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile / Level 5.1",
  "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile / Level 5.1",
  "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
  "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
  "1.2.840.10008.1.2.4.112": "JPEG XL",
  "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.202": "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.4.204": "JPIP HTJ2K Referenced",
  "1.2.840.10008.1.2.4.205": "JPIP HTJ2K Referenced Deflate",
  "1.2.840.10008.1.2.6.1": "RFC 2557 MIME encapsulation (retired)",
  "1.2.840.10008.1.2.6.2": "XML Encoding (retired)",
  "1.2.840.10008.1.2.7.1": "SMPTE ST 2110-20 Uncompressed Progressive Active Video",
  "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
};

const BY_UID = new Map(SUPPORTED.map((s) => [s.uid, s]));

/** The supported syntax with this UID, or undefined. */
export function transferSyntax(uid: string): TransferSyntax | undefined {
  return BY_UID.get(uid);
}

/** "UID (name)" for messages, for any UID. */
export function describeTransferSyntax(uid: string): string {
  const name = BY_UID.get(uid)?.name ?? UNSUPPORTED_NAMES[uid];
  return name === undefined ? `${uid} (not a transfer syntax this importer knows)` : `${uid} (${name})`;
}

function syntax(
  uid: string,
  name: string,
  pixels: PixelEncoding,
  options: { explicitVr?: boolean; littleEndian?: boolean; deflated?: boolean } = {},
): TransferSyntax {
  return {
    uid,
    name,
    pixels,
    explicitVr: options.explicitVr ?? true,
    littleEndian: options.littleEndian ?? true,
    deflated: options.deflated ?? false,
  };
}
