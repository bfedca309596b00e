import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import dicomParser from "dicom-parser";
import { describe, expect, it, vi } from "vitest";
import type { DecodedFrame } from "../../../src/core/image/frame";
import { toModelInput } from "../../../src/core/image/model-input";
import { storedValues } from "../../../src/core/image/stored-values";
import { decodeWithWasm } from "../../../workers/import/dicom/codecs";
import { parseDataSet } from "../../../workers/import/dicom/dataset";
import { decodeFrame } from "../../../workers/import/dicom/decode";
import { decodeJpegDct } from "../../../workers/import/dicom/jpeg-dct";
import { readLayout } from "../../../workers/import/dicom/layout";
import { readPixelInfo } from "../../../workers/import/dicom/pixel-info";
import { type DicomImage, type ReadDicomOptions, readDicom } from "../../../workers/import/dicom/read";

/** pydicom's test files; reference values are pydicom's own (its tests/pixels/pixels_reference.py). */
const DIR = "../shared/data/dicom/pydicom";
const HAVE = existsSync(DIR);
if (!HAVE) console.warn("DICOM codec tests skipped: ../shared/data/dicom/pydicom absent");

const bytesOf = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));

async function image(name: string, options: Partial<ReadDicomOptions> = {}): Promise<DicomImage> {
  const result = await readDicom(bytesOf(name), { fileName: name, ...options });
  if (result.kind !== "image") throw new Error(`${name} was skipped: ${result.reason}`);
  return result;
}

/** Any frame of any file with pixels, bypassing the skip of non-image objects (the RT Dose grids test decoders well). */
async function frameOf(name: string, index: number): Promise<DecodedFrame> {
  const bytes = bytesOf(name);
  const parsed = await parseDataSet(bytes, readLayout(bytes, name), name);
  return decodeFrame(parsed, readPixelInfo(parsed), index);
}

/** The first frame's compressed bytes, straight from dicom-parser. */
function encodedFrame(name: string): Uint8Array {
  const bytes = bytesOf(name);
  const fragment = dicomParser.parseDicom(bytes).elements.x7fe00010?.fragments?.[0];
  if (fragment === undefined) throw new Error(`${name} has no fragments`);
  return bytes.slice(fragment.position, fragment.position + fragment.length);
}

/** Sample (row, column) of an interleaved frame: its stored values. */
function at(frame: DecodedFrame, row: number, column: number): number[] {
  const values = storedValues(frame);
  const spp = frame.samplesPerPixel;
  const i = (row * frame.columns + column) * spp;
  return Array.from(values.subarray(i, i + spp));
}

function rgb(f: DicomImage): Float32Array {
  return toModelInput(f.frame, { width: f.columns, height: f.rows, channels: 3 });
}

function errors(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  expect(a.length).toBe(b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

/** pydicom's SC_rgb reference: column 50 of rows 5, 15, …, 95 is a set of colour bars. */
const SC_RGB_BARS = [
  [255, 0, 0],
  [255, 128, 128],
  [0, 255, 0],
  [128, 255, 128],
  [0, 0, 255],
  [128, 128, 255],
  [0, 0, 0],
  [64, 64, 64],
  [192, 192, 192],
  [255, 255, 255],
];
const BAR_ROWS = [5, 15, 25, 35, 45, 55, 65, 75, 85, 95];

describe.runIf(HAVE)("compressed and unusual pixel encodings against pydicom's facts", () => {
  it("decodes RLE Lossless at 8, 16 and 32 bits to pydicom's colour bars, equal once scaled to [0, 1]", async () => {
    const eight = await image("SC_rgb_rle.dcm");
    const sixteen = await image("SC_rgb_rle_16bit.dcm");
    const thirtyTwo = await image("SC_rgb_rle_32bit.dcm");
    expect(BAR_ROWS.map((r) => at(eight.frame, r, 50))).toEqual(SC_RGB_BARS);
    expect(BAR_ROWS.map((r) => at(sixteen.frame, r, 50))).toEqual(
      SC_RGB_BARS.map((p) => p.map((v) => v * 257)),
    );
    expect(BAR_ROWS.map((r) => at(thirtyTwo.frame, r, 50))).toEqual(
      SC_RGB_BARS.map((p) => p.map((v) => v * 16843009)),
    );
    expect(errors(rgb(sixteen), rgb(eight)).max).toBeLessThan(1e-6);
    expect(errors(rgb(thirtyTwo), rgb(eight)).max).toBeLessThan(1e-6);
  });

  it("matches lossless twins exactly: JPEG Lossless (SC_rgb_jpeg_gdcm) and JPEG 2000 (SC_rgb_gdcm_KY) vs RLE", async () => {
    const rle = await image("SC_rgb_rle.dcm");
    for (const name of ["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_gdcm_KY.dcm"]) {
      const twin = await image(name);
      expect(Array.from(twin.frame.samples), name).toEqual(Array.from(rle.frame.samples));
    }
  });

  it("selects frames of multi-frame files: the second frame of SC_rgb_rle_2frame is the first inverted", async () => {
    const first = await image("SC_rgb_rle_2frame.dcm", { frame: 0 });
    const second = await image("SC_rgb_rle_2frame.dcm", { frame: 1 });
    const middle = await image("SC_rgb_rle_2frame.dcm", { frame: "middle" });
    expect([first.numberOfFrames, second.frameIndex, middle.frameIndex]).toEqual([2, 1, 0]);
    expect(Array.from(second.frame.samples)).toEqual(Array.from(first.frame.samples, (v) => 255 - v));
    expect(Array.from(first.frame.samples)).toEqual(
      Array.from((await image("SC_rgb_rle.dcm")).frame.samples),
    );
    const sixteen = await image("SC_rgb_rle_16bit_2frame.dcm", { frame: 1 });
    expect(BAR_ROWS.map((r) => at(sixteen.frame, r, 50))).toEqual(
      SC_RGB_BARS.map((p) => p.map((v) => (255 - v) * 257)),
    );
    await expect(image("SC_rgb_rle_2frame.dcm", { frame: 2 })).rejects.toThrow(
      /frame 2 does not exist: the image has 2 frame/,
    );
  });

  it("decodes the 15-frame RT Dose grid alike from implicit, big-endian and RLE files (pydicom's values)", async () => {
    // RT Dose is skipped as an image to train on, but its 32-bit frames test the decoders well.
    // pydicom's arr[0, 0], arr[4, 3], arr[4, 4] and arr[-1, -1] of frames 0, 7 and 14 (10×10 frames).
    const reference: Record<number, [number, number][]> = {
      0: [
        [0, 1249000],
        [43, 1031000],
        [44, 1029000],
        [99, 798000],
      ],
      7: [
        [0, 1253000],
        [43, 1026000],
        [44, 1023000],
        [99, 803000],
      ],
      14: [
        [0, 1249000],
        [43, 1031000],
        [44, 1031000],
        [99, 799000],
      ],
    };
    for (const index of [0, 7, 14]) {
      const implicit = await frameOf("rtdose.dcm", index);
      for (const [i, value] of reference[index] as [number, number][])
        expect(implicit.samples[i]).toBe(value);
      for (const other of ["rtdose_expb.dcm", "rtdose_rle.dcm"]) {
        expect(Array.from((await frameOf(other, index)).samples), `${other} frame ${index}`).toEqual(
          Array.from(implicit.samples),
        );
      }
    }
    for (const single of ["rtdose_1frame.dcm", "rtdose_expb_1frame.dcm", "rtdose_rle_1frame.dcm"]) {
      expect(Array.from((await frameOf(single, 0)).samples)).toEqual(
        Array.from((await frameOf("rtdose.dcm", 0)).samples),
      );
    }
  });

  it("inflates the deflated data set of image_dfl.dcm (pydicom's values), trailing bytes and all", async () => {
    const dfl = await image("image_dfl.dcm");
    const values = Array.from(storedValues(dfl.frame));
    const row = (r: number) => values.slice(r * 512, r * 512 + 512);
    expect(dfl.transferSyntaxUid).toBe("1.2.840.10008.1.2.1.99");
    expect([Math.min(...row(10)), Math.max(...row(10))]).toEqual([41, 255]);
    expect(row(300).slice(255, 263)).toEqual([138, 65, 65, 65, 65, 35, 35, 35]);
    expect([Math.min(...row(500)), Math.max(...row(500))]).toEqual([65, 219]);
  });

  it("decodes JPEG 2000 with a JP2 header and YBR_RCT (GDCMJ2K_TextGBR.dcm) to pydicom's RGB", async () => {
    const j2k = await image("GDCMJ2K_TextGBR.dcm");
    expect([j2k.photometricInterpretation, j2k.frame.photometric]).toEqual(["YBR_RCT", "RGB"]);
    expect([at(j2k.frame, 45, 140), at(j2k.frame, 46, 140), at(j2k.frame, 350, 195)]).toEqual([
      [223, 32, 32],
      [255, 0, 0],
      [128, 128, 128],
    ]);
  });

  it("follows Pixel Representation when the JPEG 2000 stream says unsigned (J2K_pixelrep_mismatch.dcm)", async () => {
    const j2k = await image("J2K_pixelrep_mismatch.dcm");
    expect(at(j2k.frame, 0, 0)).toEqual([-2000]);
    expect([47, 48, 49, 50, 51, 52, 53, 54, 55, 56].map((r) => at(j2k.frame, r, 279)[0])).toEqual([
      621, 412, 138, -193, -520, -767, -907, -966, -988, -995,
    ]);
    expect([328, 329, 330, 331, 332, 333, 334, 335, 336, 337].map((r) => at(j2k.frame, r, 106)[0])).toEqual([
      -377, -121, 141, 383, 633, 910, 1198, 1455, 1638, 1732,
    ]);
  });

  it("decodes JPEG-LS lossless to pydicom's column of MR_small_jpeg_ls_lossless.dcm", async () => {
    const jls = await image("MR_small_jpeg_ls_lossless.dcm");
    expect([55, 56, 57, 58, 59, 60, 61, 62, 63].map((r) => at(jls.frame, r, 35)[0])).toEqual([
      170, 193, 191, 373, 1293, 2053, 1879, 1683, 1711,
    ]);
  });

  it("decodes 12-bit JPEG Extended, the broken-SOS file and its fixed twin alike, to pydicom's values", async () => {
    const fixed = await image("JPGExtended.dcm");
    const broken = await image("JPEG-lossy.dcm");
    expect([fixed.frame.bitsStored, fixed.transferSyntaxUid]).toEqual([12, "1.2.840.10008.1.2.4.51"]);
    expect([at(fixed.frame, 420, 140), at(fixed.frame, 230, 120)]).toEqual([[244], [95]]);
    expect(Array.from(broken.frame.samples)).toEqual(Array.from(fixed.frame.samples));
  });

  it("agrees with JPEG 2000 on the same NM image encoded lossily twice (JPGExtended.dcm vs JPEG2000.dcm)", async () => {
    // Two independent decoders (ours, OpenJPEG) of two lossy encodings of NEMA's NM1: same picture, not same bytes.
    const jpeg = Array.from(storedValues((await image("JPGExtended.dcm")).frame));
    const j2k = Array.from(storedValues((await image("JPEG2000.dcm")).frame));
    const correlation = (x: number[], y: number[]) => {
      const mx = x.reduce((a, b) => a + b, 0) / x.length;
      const my = y.reduce((a, b) => a + b, 0) / y.length;
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      x.forEach((v, i) => {
        sxy += (v - mx) * ((y[i] as number) - my);
        sxx += (v - mx) ** 2;
        syy += ((y[i] as number) - my) ** 2;
      });
      return sxy / Math.sqrt(sxx * syy);
    };
    expect(correlation(jpeg, j2k)).toBeGreaterThan(0.95);
    // A control: the same image upside down does not correlate.
    const flipped = Array.from(
      { length: jpeg.length },
      (_, i) => jpeg[(1023 - Math.floor(i / 256)) * 256 + (i % 256)] as number,
    );
    expect(correlation(flipped, j2k)).toBeLessThan(0.5);
  });

  it("decodes JPEG baseline: RGB exactly at pydicom's points, YCbCr variants within lossy tolerance of the RLE twin", async () => {
    const reference = rgb(await image("SC_rgb_rle.dcm"));
    const rgbJpeg = await image("SC_rgb_dcmtk_+eb+cr.dcm");
    expect(BAR_ROWS.map((r) => at(rgbJpeg.frame, r, 50))).toEqual(SC_RGB_BARS);
    // Tolerances on [0, 1]: mean error and worst pixel (colour-bar edges under chroma subsampling).
    const cases: [name: string, mean: number, max: number][] = [
      ["SC_rgb_dcmtk_+eb+cr.dcm", 0.002, 0.01],
      ["SC_rgb_dcmtk_+eb+cy+s4.dcm", 0.005, 0.03],
      ["SC_rgb_dcmtk_+eb+cy+s2.dcm", 0.005, 0.03],
      ["SC_rgb_dcmtk_+eb+cy+n2.dcm", 0.005, 0.03],
      ["SC_rgb_jpeg_dcmtk.dcm", 0.005, 0.03],
      ["SC_rgb_dcmtk_+eb+cy+n1.dcm", 0.015, 0.35],
      ["SC_rgb_dcmtk_+eb+cy+np.dcm", 0.015, 0.35],
      ["SC_rgb_jpeg_lossy_gdcm.dcm", 0.015, 0.35],
    ];
    for (const [name, mean, max] of cases) {
      const e = errors(rgb(await image(name)), reference);
      expect(e.mean, name).toBeLessThan(mean);
      expect(e.max, name).toBeLessThan(max);
    }
    const odd = errors(
      rgb(await image("SC_rgb_small_odd_jpeg.dcm")),
      rgb(await image("SC_rgb_small_odd.dcm")),
    );
    expect(odd.max).toBeLessThan(0.02);
  });

  it("converts native YBR_FULL_422 (SC_ybr_full_422_uncompressed.dcm) to RGB near pydicom's YBR→RGB values", async () => {
    const ybr = await image("SC_ybr_full_422_uncompressed.dcm");
    expect(ybr.frame.photometric).toBe("YBR_FULL_422");
    expect(Array.from(ybr.frame.samples.subarray((5 * 100 + 50) * 2, (5 * 100 + 50) * 2 + 4))).toEqual([
      76, 76, 85, 255,
    ]);
    const out = rgb(ybr);
    // pydicom's as_rgb values for this image at column 50 of the bar rows.
    const pydicomRgb = [
      [254, 0, 0],
      [255, 127, 127],
      [0, 255, 5],
      [129, 255, 129],
      [0, 0, 254],
      [128, 127, 255],
      [0, 0, 0],
      [64, 64, 64],
      [192, 192, 192],
      [255, 255, 255],
    ];
    BAR_ROWS.forEach((r, k) => {
      const i = (r * 100 + 50) * 3;
      Array.from(out.subarray(i, i + 3)).forEach((v, c) => {
        expect(Math.abs(v * 255 - (pydicomRgb[k]?.[c] as number))).toBeLessThanOrEqual(1);
      });
    });
    expect(errors(out, rgb(await image("SC_rgb_rle.dcm"))).mean).toBeLessThan(0.005);
  });

  it("decodes an RGB JPEG whose stream says nothing of its colour space as RGB, as its Photometric Interpretation says", async () => {
    // SC_rgb_jpeg_dcmd.dcm is the same tile decompressed by DCMTK; libjpeg alone would turn it magenta.
    const plain = await image("SC_rgb_jpeg_dcmd.dcm");
    for (const name of ["SC_jpeg_no_color_transform.dcm", "SC_rgb_jpeg.dcm"]) {
      expect(Array.from((await image(name)).frame.samples), name).toEqual(Array.from(plain.frame.samples));
    }
    // With an Adobe marker saying "no transform" libjpeg-turbo decodes it; both files hold the same stream.
    const adobe = await image("SC_jpeg_no_color_transform_2.dcm");
    expect(Array.from((await image("SC_rgb_jpeg_app14_dcmd.dcm")).frame.samples)).toEqual(
      Array.from(adobe.frame.samples),
    );
    expect(errors(adobe.frame.samples, plain.frame.samples).mean).toBeLessThan(3);
  });

  it("our 8-bit DCT path matches libjpeg-turbo exactly on RGB 4:4:4 and within a step after YCbCr→RGB", async () => {
    const rgbStream = encodedFrame("SC_rgb_dcmtk_+eb+cr.dcm");
    const ours = decodeJpegDct(rgbStream);
    const theirs = await decodeWithWasm("libjpeg-turbo", rgbStream);
    expect(Array.from(ours.data)).toEqual(Array.from(theirs.bytes));
    const ycc = decodeJpegDct(encodedFrame("SC_rgb_dcmtk_+eb+cy+s4.dcm"));
    const asFrame: DecodedFrame = {
      rows: 100,
      columns: 100,
      samplesPerPixel: 3,
      bitsAllocated: 8,
      bitsStored: 8,
      highBit: 7,
      pixelRepresentation: 0,
      photometric: "YBR_FULL",
      planarConfiguration: 0,
      samples: ycc.data as Uint8Array,
      rescaleSlope: 1,
      rescaleIntercept: 0,
    };
    const converted = toModelInput(asFrame, { width: 100, height: 100, channels: 3 });
    const viaLibjpeg = rgb(await image("SC_rgb_dcmtk_+eb+cy+s4.dcm"));
    expect(errors(converted, viaLibjpeg).max).toBeLessThanOrEqual(1.5 / 255);
  });

  it("loads a codec from .wasm bytes or a URL the caller gives, and recovers from one that fails to load", async () => {
    // A fresh copy of the codec module, so nothing is loaded yet.
    vi.resetModules();
    const codecs = await import("../../../workers/import/dicom/codecs");
    const require = createRequire(import.meta.url);
    const wasmPath = (pkg: string) => require.resolve(`@cornerstonejs/${pkg}`);
    const openjpegBytes = new Uint8Array(readFileSync(wasmPath("codec-openjpeg/decodewasm")));
    codecs.configureDicomCodecs({
      wasm: { openjpeg: openjpegBytes, charls: new URL("file:///nonexistent/charlswasm_decode.wasm") },
    });
    const j2k = await codecs.decodeWithWasm("openjpeg", encodedFrame("MR_small_jp2klossless.dcm"));
    expect([j2k.width, j2k.height, j2k.bitsPerSample, j2k.signed]).toEqual([64, 64, 16, true]);
    await expect(
      codecs.decodeWithWasm("charls", encodedFrame("MR_small_jpeg_ls_lossless.dcm")),
    ).rejects.toThrow();
    codecs.configureDicomCodecs({ wasm: { charls: wasmPath("codec-charls/decodewasm") } });
    const jls = await codecs.decodeWithWasm("charls", encodedFrame("MR_small_jpeg_ls_lossless.dcm"));
    expect(Array.from(new Int16Array(jls.bytes.buffer))).toEqual(
      Array.from(storedValues((await image("MR_small.dcm")).frame)),
    );
  });
});
