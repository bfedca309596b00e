import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDataSet } from "../../../workers/import/dicom/dataset";
import { DicomError } from "../../../workers/import/dicom/errors";
import { readLayout } from "../../../workers/import/dicom/layout";
import { readPixelInfo } from "../../../workers/import/dicom/pixel-info";
import { readDicom } from "../../../workers/import/dicom/read";

/** Real-world broken files among pydicom's test files, and the same files cut short or scrambled. */
const DIR = "../shared/data/dicom/pydicom";
const HAVE = existsSync(DIR);
if (!HAVE) console.warn("DICOM broken-file tests skipped: ../shared/data/dicom/pydicom absent");

const bytesOf = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));

/** The DicomError reading these bytes gives; fails the test when it reads or throws anything else. */
async function rejection(bytes: Uint8Array, fileName: string): Promise<DicomError> {
  const outcome = await readDicom(bytes, { fileName }).then(
    (read) => read,
    (e: unknown) => e,
  );
  if (!(outcome instanceof DicomError))
    throw new Error(`${fileName}: expected a DicomError, got ${String(outcome)}`);
  expect(outcome.name).toBe("ImportError"); // what the page shows as "your file"
  expect(outcome.message.startsWith(`${fileName}: `)).toBe(true);
  return outcome;
}

/** Reads without crashing: an image, a skip or a DicomError, never another kind of error. */
async function settles(bytes: Uint8Array, fileName: string): Promise<"image" | "skip" | "error"> {
  try {
    return (await readDicom(bytes, { fileName })).kind;
  } catch (e) {
    if (e instanceof DicomError) return "error";
    throw new Error(`${fileName}: ${String(e)}`);
  }
}

describe.runIf(HAVE)("broken DICOM files are reported, never crash", () => {
  it("reports MR_truncated.dcm as truncated, where its Pixel Data starts and how much is missing", async () => {
    const error = await rejection(bytesOf("MR_truncated.dcm"), "MR_truncated.dcm");
    expect(error.problem).toBe("truncated");
    expect(error.offset).toBe(1500);
    expect(error.message).toBe(
      "MR_truncated.dcm: Pixel Data (7FE0,0010) says it holds 8192 bytes but the file ends 8130 bytes into it: " +
        "the file is truncated (at byte 1500)",
    );
  });

  it("reports rtplan_truncated.dcm as truncated with the byte it could not read past", async () => {
    const error = await rejection(bytesOf("rtplan_truncated.dcm"), "rtplan_truncated.dcm");
    expect(error.problem).toBe("truncated");
    expect(error.offset).toBeGreaterThan(128);
    expect(error.offset).toBeLessThanOrEqual(bytesOf("rtplan_truncated.dcm").length);
  });

  it("reads meta_missing_tsyntax.dcm and nested_priv_SQ.dcm (implicit VR sniffed) and reports their missing image attributes", async () => {
    for (const name of ["meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm"]) {
      const error = await rejection(bytesOf(name), name);
      expect(error.problem).toBe("missing-attribute");
      expect(error.message).toMatch(/has Pixel Data but no Rows \(0028,0010\)/);
    }
  });

  it('reports badVR.dcm\'s Number of Frames "1A" when its pixels are asked for', async () => {
    const bytes = bytesOf("badVR.dcm");
    const parsed = await parseDataSet(bytes, readLayout(bytes, "badVR.dcm"), "badVR.dcm");
    expect(() => readPixelInfo(parsed)).toThrow(
      /badVR\.dcm: Number of Frames \(0028,0008\) is "1A", not an integer/,
    );
  });

  it("reports a JPEG 2000 stream damaged by an embedded delimiter as a decode failure naming the syntax", async () => {
    const name = "JPEG2000-embedded-sequence-delimiter.dcm";
    const error = await rejection(bytesOf(name), name);
    expect(error.problem).toBe("decode-failed");
    expect(error.message).toMatch(/could not be decoded as JPEG 2000 Image Compression/);
  });

  it("refuses files that are not DICOM: empty, text, gzip, random bytes, a DICM marker over junk", async () => {
    expect((await rejection(new Uint8Array(0), "empty.dcm")).problem).toBe("not-dicom");
    expect((await rejection(bytesOf("README.txt"), "README.txt")).problem).toBe("unknown-encoding");
    expect((await rejection(bytesOf("zipMR.gz"), "zipMR.gz")).problem).toBe("unknown-encoding");
    let seed = 7;
    const junk = Uint8Array.from({ length: 4096 }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    });
    expect((await rejection(junk, "junk.bin")).problem).toBe("unknown-encoding");
    const marked = junk.slice();
    marked.set([0x44, 0x49, 0x43, 0x4d], 128);
    const error = await rejection(marked, "marked.bin");
    expect(["malformed", "unknown-encoding", "truncated"]).toContain(error.problem);
  });

  it("reports every cut of an uncompressed file inside its Pixel Data as truncated", async () => {
    // MR_small.dcm's Pixel Data is bytes 1500..9692 (elements follow it to the file's end at 9830).
    const whole = bytesOf("MR_small.dcm");
    for (let end = 1501; end < 9692; end += 811) {
      const error = await rejection(whole.subarray(0, end), `MR_small cut at ${end}`);
      expect(error.problem).toBe("truncated");
    }
  });

  it("never crashes on files cut anywhere, whatever their encoding", async () => {
    const files = [
      "MR_small.dcm",
      "MR_small_implicit.dcm",
      "MR_small_bigendian.dcm",
      "MR_small_RLE.dcm",
      "MR_small_jp2klossless.dcm",
      "MR_small_jpeg_ls_lossless.dcm",
      "SC_rgb_dcmtk_+eb+cy+n2.dcm",
      "SC_jpeg_no_color_transform.dcm",
      "SC_rgb_jpeg_gdcm.dcm",
      "JPGExtended.dcm",
      "image_dfl.dcm",
      "rtplan.dcm",
      "ExplVR_BigEndNoMeta.dcm",
    ];
    const outcomes = new Map<string, number>();
    for (const name of files) {
      const whole = bytesOf(name);
      for (let k = 1; k <= 24; k++) {
        const end = Math.floor((whole.length * k) / 25);
        const outcome = await settles(whole.subarray(0, end), `${name} cut at ${end}`);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
    }
    // Every cut before the end of the Pixel Data is an error; a few cuts fall in trailing elements and still read.
    expect(outcomes.get("error") ?? 0).toBeGreaterThan(280);
    expect((outcomes.get("image") ?? 0) + (outcomes.get("skip") ?? 0)).toBeLessThan(20);
  });

  it("never crashes on files with scrambled bytes", async () => {
    let seed = 99;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (const name of [
      "MR_small.dcm",
      "MR_small_implicit.dcm",
      "MR_small_RLE.dcm",
      "SC_rgb_dcmtk_+eb+cy+n2.dcm",
      "JPGExtended.dcm",
    ]) {
      const whole = bytesOf(name);
      for (let trial = 0; trial < 15; trial++) {
        const damaged = whole.slice();
        for (let k = 0; k < 8; k++) damaged[next() % damaged.length] = next() >>> 24;
        await settles(damaged, `${name} scrambled #${trial}`);
      }
    }
  });
});
