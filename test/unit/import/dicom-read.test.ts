import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import dicomParser from "dicom-parser";
import { describe, expect, it } from "vitest";
import type { DecodedFrame } from "../../../src/core/image/frame";
import { toModelInput } from "../../../src/core/image/model-input";
import { storedValues } from "../../../src/core/image/stored-values";
import { DicomError } from "../../../workers/import/dicom/errors";
import { looksLikeDicom } from "../../../workers/import/dicom/layout";
import {
  type DicomImage,
  LABEL_KEYS,
  type ReadDicomOptions,
  readDicom,
} from "../../../workers/import/dicom/read";

/** pydicom's test files (facts in ../shared/data/README.md and the folder's README.txt). */
const DIR = "../shared/data/dicom/pydicom";
const HAVE = existsSync(DIR);
if (!HAVE) console.warn("DICOM real-file tests skipped: ../shared/data/dicom/pydicom absent");

const bytesOf = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));

async function read(name: string, options: Partial<ReadDicomOptions> = {}) {
  return readDicom(bytesOf(name), { fileName: name, ...options });
}

async function image(name: string, options: Partial<ReadDicomOptions> = {}): Promise<DicomImage> {
  const result = await read(name, options);
  if (result.kind !== "image") throw new Error(`${name} was skipped: ${result.reason}`);
  return result;
}

async function rejection(name: string): Promise<DicomError> {
  const error = await read(name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DicomError);
  return error as DicomError;
}

/** Modality values (after rescale) of a grey frame. */
function modality(frame: DecodedFrame): number[] {
  return Array.from(storedValues(frame), (v) => v * frame.rescaleSlope + frame.rescaleIntercept);
}

const MR_VARIANTS: [file: string, transferSyntax: string][] = [
  ["MR_small.dcm", "1.2.840.10008.1.2.1"],
  ["MR_small_implicit.dcm", "1.2.840.10008.1.2"],
  ["MR_small_bigendian.dcm", "1.2.840.10008.1.2.2"],
  ["MR_small_expb.dcm", "1.2.840.10008.1.2.2"],
  ["MR_small_padded.dcm", "1.2.840.10008.1.2.1"],
  ["MR_small_RLE.dcm", "1.2.840.10008.1.2.5"],
  ["MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90"],
  ["MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80"],
];

describe.runIf(HAVE)("DICOM files read from their bytes (pydicom's test files)", () => {
  it("reads MR_small's known pixels: min 127, max 2145, mean 518.88, and pydicom's sample values", async () => {
    // Execute
    const mr = await image("MR_small.dcm");
    const values = Array.from(storedValues(mr.frame));
    // Assert
    expect([mr.rows, mr.columns, mr.frame.pixelRepresentation, mr.frame.bitsStored]).toEqual([64, 64, 1, 16]);
    expect(Math.min(...values)).toBe(127);
    expect(Math.max(...values)).toBe(2145);
    expect(values.reduce((a, b) => a + b, 0) / values.length).toBeCloseTo(518.88, 2);
    expect(values.slice(31, 34)).toEqual([422, 319, 361]); // row 0, columns 31..33
    expect(values.slice(31 * 64, 31 * 64 + 3)).toEqual([366, 363, 322]);
    expect(values.slice(-3)).toEqual([1369, 1129, 862]);
  });

  it.each(MR_VARIANTS)(
    "gives %s the same pixels as MR_small.dcm (transfer syntax %s)",
    async (file, syntax) => {
      const reference = Array.from(storedValues((await image("MR_small.dcm")).frame));
      const variant = await image(file);
      expect(variant.transferSyntaxUid).toBe(syntax);
      expect(Array.from(storedValues(variant.frame))).toEqual(reference);
    },
  );

  it("rescales CT_small.dcm to Hounsfield units from -896 to 1167 and windows them per PS3.3 C.11.2.1.2.1", async () => {
    // Prepare
    const ct = await image("CT_small.dcm");
    // Execute
    const hu = modality(ct.frame);
    const out = toModelInput(ct.frame, {
      width: 128,
      height: 128,
      channels: 1,
      window: { center: 40, width: 400 },
    });
    // Assert
    expect([ct.modality, ct.frame.rescaleSlope, ct.frame.rescaleIntercept]).toEqual(["CT", 1, -1024]);
    expect(Math.min(...hu)).toBe(-896);
    expect(Math.max(...hu)).toBe(1167);
    const expected = hu.map((x) => (x <= -160 ? 0 : x > 239 ? 1 : (x - 39.5) / 399 + 0.5));
    expect(Math.max(...expected.map((e, i) => Math.abs(e - (out[i] as number))))).toBeLessThan(1e-6);
    expect(expected.filter((e) => e > 0 && e < 1).length).toBeGreaterThan(1000); // the window is not all clipped
  });

  it("inverts the MONOCHROME1 CR files: a larger stored value gives a darker output", async () => {
    for (const file of [
      "dicomdirtests/77654033/CR1/6154",
      "dicomdirtests/77654033/CR2/6247",
      "dicomdirtests/77654033/CR3/6278",
    ]) {
      // Prepare
      const cr = await image(file);
      const stored = Array.from(storedValues(cr.frame));
      const hu = modality(cr.frame);
      const spec = { width: cr.columns, height: cr.rows, channels: 1 as const };
      const window = {
        center: (Math.min(...hu) + Math.max(...hu)) / 2,
        width: Math.max(...hu) - Math.min(...hu) + 2,
      };
      expect([cr.photometricInterpretation, cr.frame.rescaleSlope, cr.frame.rescaleIntercept]).toEqual([
        "MONOCHROME1",
        0.684,
        200,
      ]);
      for (const out of [toModelInput(cr.frame, spec), toModelInput(cr.frame, { ...spec, window })]) {
        // Assert: every pair of pixels keeps its order reversed.
        let pairs = 0;
        let reversed = 0;
        for (let i = 0; i < stored.length; i++) {
          for (let j = 0; j < stored.length; j++) {
            if ((stored[i] as number) >= (stored[j] as number)) continue;
            pairs++;
            if ((out[i] as number) > (out[j] as number)) reversed++;
          }
        }
        expect(pairs).toBeGreaterThan(10_000);
        expect(reversed).toBe(pairs);
      }
      // And read as MONOCHROME2 the same pixels keep their order.
      const m2 = toModelInput({ ...cr.frame, photometric: "MONOCHROME2" }, spec);
      const byOutput = Array.from(m2.keys()).sort((x, y) => (m2[x] as number) - (m2[y] as number));
      expect(byOutput.map((i) => stored[i])).toEqual([...stored].sort((a, b) => a - b));
    }
  });

  it("sniffs data sets without preamble or meta header, little and big endian, explicit and implicit", async () => {
    // ExplVR_*NoMeta.dcm are the same RT Ion Plan in both byte orders; rtstruct.dcm is implicit VR.
    const little = await read("ExplVR_LitEndNoMeta.dcm");
    const big = await read("ExplVR_BigEndNoMeta.dcm");
    const implicit = await read("rtstruct.dcm");
    expect(little).toMatchObject({ kind: "skip", sopClassUid: "1.2.840.10008.5.1.4.1.1.481.8" });
    expect(big).toMatchObject({ kind: "skip", sopClassUid: "1.2.840.10008.5.1.4.1.1.481.8" });
    expect(implicit).toMatchObject({ kind: "skip", sopClassUid: "1.2.840.10008.5.1.4.1.1.481.3" });
    for (const name of [
      "ExplVR_LitEndNoMeta.dcm",
      "ExplVR_BigEndNoMeta.dcm",
      "rtstruct.dcm",
      "MR_small.dcm",
    ]) {
      expect(looksLikeDicom(bytesOf(name))).toBe(true);
    }
    expect(looksLikeDicom(bytesOf("README.txt"))).toBe(false);
    expect(looksLikeDicom(bytesOf("zipMR.gz"))).toBe(false);
  });

  it("refuses no_meta.dcm, whose data set starts one stray byte in, instead of guessing", async () => {
    // The file is CT_small.dcm's data set after a 0x20 byte: read from the next byte on, it is CT_small.
    const error = await rejection("no_meta.dcm");
    expect(error.problem).toBe("unknown-encoding");
    expect(error.offset).toBe(0);
    expect(error.message).toMatch(/^no_meta\.dcm: no DICM marker at byte 128/);
    const shifted = await readDicom(bytesOf("no_meta.dcm").subarray(1), {
      fileName: "no_meta.dcm from byte 1",
    });
    const ct = await image("CT_small.dcm");
    if (shifted.kind !== "image") throw new Error("expected an image");
    expect(Array.from(shifted.frame.samples)).toEqual(Array.from(ct.frame.samples));
    expect(shifted.warnings.join(" ")).toMatch(
      /No transfer syntax in the file; its data set reads as 1\.2\.840\.10008\.1\.2\.1/,
    );
  });

  it("skips DICOMDIR files, whatever their encoding, and says why", async () => {
    for (const file of [
      "dicomdirtests/DICOMDIR",
      "dicomdirtests/DICOMDIR-bigEnd",
      "dicomdirtests/DICOMDIR-implicit",
      "dicomdirtests/DICOMDIR-empty.dcm",
      "dicomdirtests/DICOMDIR-nooffset",
      "dicomdirtests/DICOMDIR-nopatient",
      "dicomdirtests/DICOMDIR-reordered",
      "dicomdirtests/TINY_ALPHA/DICOMDIR",
    ]) {
      const result = await read(file);
      expect(result, file).toMatchObject({ kind: "skip", sopClassUid: "1.2.840.10008.1.3.10" });
      expect(result.kind === "skip" && result.reason).toMatch(/DICOMDIR .*not an image/);
    }
  });

  it("skips non-image objects (SR, RT, waveform, segmentation) and objects without pixels, with the reason", async () => {
    const cases: [file: string, reason: RegExp][] = [
      [
        "reportsi.dcm",
        /Structured Report, not an image \(SOP Class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.11\)/,
      ],
      ["reportsi_with_empty_number_tags.dcm", /Structured Report/],
      ["test-SR.dcm", /Structured Report.*88\.33/],
      ["rtplan.dcm", /RT Plan, not an image/],
      ["rtstruct.dcm", /RT Structure Set/],
      ["rtdose.dcm", /RT Dose \(a computed dose grid\), not an image/],
      ["rtdose_rle.dcm", /RT Dose/],
      ["rtdose_expb_1frame.dcm", /RT Dose/],
      ["waveform_ecg.dcm", /waveform/],
      ["liver_1frame.dcm", /Segmentation/],
      ["liver_expb_1frame.dcm", /Segmentation/],
      ["UN_sequence.dcm", /no Pixel Data \(7FE0,0010\)/],
      ["priv_SQ.dcm", /no Pixel Data/],
      ["empty_charset_LEI.dcm", /no Pixel Data/],
      ["no_meta_group_length.dcm", /no Pixel Data/],
      ["dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000", /no Pixel Data/],
    ];
    for (const [file, reason] of cases) {
      const result = await read(file);
      expect(result.kind, file).toBe("skip");
      if (result.kind === "skip") expect(result.reason, file).toMatch(reason);
    }
  });

  it('reads badVR.dcm as pydicom does (an RT Dose, skipped) despite its Number of Frames "1A"', async () => {
    expect(await read("badVR.dcm")).toMatchObject({ kind: "skip", modality: "RTDOSE" });
  });

  it("reads SC_rgb_jpeg.dcm, an implicit VR data set under an explicit VR syntax, as written (as pydicom does)", async () => {
    const file = await image("SC_rgb_jpeg.dcm");
    expect(file.warnings.join(" ")).toMatch(
      /written as implicit VR little endian although the transfer syntax/,
    );
    expect([file.rows, file.columns, file.frame.photometric]).toEqual([256, 256, "RGB"]);
  });

  it("hands back label keys only when asked, and nothing else that names the patient", async () => {
    // Prepare: what the file holds, read with dicom-parser directly.
    const ds = dicomParser.parseDicom(bytesOf("MR_small.dcm"));
    const patientName = ds.string("x00100010") as string;
    const patientId = ds.string("x00100020") as string;
    expect(patientName.length).toBeGreaterThan(3);
    // Execute
    const without = await image("MR_small.dcm");
    const withKeys = await image("MR_small.dcm", { labelKeys: LABEL_KEYS });
    // Assert
    expect(without.labelKeys).toEqual({});
    expect(withKeys.labelKeys).toEqual({
      SOPInstanceUID: ds.string("x00080018"),
      PatientID: patientId,
      StudyInstanceUID: ds.string("x0020000d"),
      SeriesInstanceUID: ds.string("x0020000e"),
      ...(ds.string("x00080050") ? { AccessionNumber: ds.string("x00080050") } : {}),
    });
    const { frame: _pixels, ...described } = withKeys;
    const text = JSON.stringify(described);
    expect(text).not.toContain(patientName);
    expect(JSON.stringify({ ...described, labelKeys: {} })).not.toContain(patientId);
    for (const other of ["x00100030", "x00100040", "x00080080", "x00080090"]) {
      const value = ds.string(other);
      if (value && value.length > 2) expect(text).not.toContain(value);
    }
  });
});
