import { describe, expect, it } from "vitest";
import { toModelInput } from "../../../src/core/image/model-input";
import { storedValues } from "../../../src/core/image/stored-values";
import { benchDicomSlices, synthesizeCtSlice } from "../../../workers/import/dicom/bench";
import { DicomError } from "../../../workers/import/dicom/errors";
import { looksLikeDicom } from "../../../workers/import/dicom/layout";
import { type DicomImage, readDicom } from "../../../workers/import/dicom/read";
import { encode, type WriteElement, writeDicom } from "../../../workers/import/dicom/write";

/** Files made in memory, so these run on a fresh clone without ../shared/data. */

function u16(values: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer);
}

/** A small grey image's elements; `over` replaces or adds elements by tag. */
function greyImage(
  pixels: Uint8Array,
  over: WriteElement[] = [],
  size: [rows: number, columns: number] = [2, 3],
): WriteElement[] {
  const base: WriteElement[] = [
    { tag: 0x00080016, vr: "UI", value: "1.2.840.10008.5.1.4.1.1.2" },
    { tag: 0x00080018, vr: "UI", value: "2.25.42" },
    { tag: 0x00080060, vr: "CS", value: "CT" },
    { tag: 0x00100010, vr: "PN", value: "Doe^Jane" },
    { tag: 0x00100020, vr: "LO", value: "PID-0007" },
    { tag: 0x00280002, vr: "US", value: [1] },
    { tag: 0x00280004, vr: "CS", value: "MONOCHROME2" },
    { tag: 0x00280010, vr: "US", value: [size[0]] },
    { tag: 0x00280011, vr: "US", value: [size[1]] },
    { tag: 0x00280100, vr: "US", value: [16] },
    { tag: 0x00280101, vr: "US", value: [16] },
    { tag: 0x00280102, vr: "US", value: [15] },
    { tag: 0x00280103, vr: "US", value: [0] },
    { tag: 0x7fe00010, vr: "OW", value: pixels },
  ];
  const tags = new Set(over.map((e) => e.tag));
  return [...base.filter((e) => !tags.has(e.tag)), ...over];
}

async function read(bytes: Uint8Array, options: { frame?: number | "middle" } = {}): Promise<DicomImage> {
  const result = await readDicom(bytes, { fileName: "synthetic.dcm", ...options });
  if (result.kind !== "image") throw new Error(`skipped: ${result.reason}`);
  return result;
}

async function failure(bytes: Uint8Array): Promise<DicomError> {
  const outcome = await readDicom(bytes, { fileName: "synthetic.dcm" }).then(
    (r) => r,
    (e: unknown) => e,
  );
  if (!(outcome instanceof DicomError))
    throw new Error(`expected a DicomError, got ${JSON.stringify(outcome)}`);
  return outcome;
}

describe("DICOM files made in memory", () => {
  it("reads 12-bit signed CT in 16-bit words with junk high bits to Hounsfield units, then windows them", async () => {
    // Prepare: stored values -1000, -1, 0, 40, 2047, -2048 as 12-bit two's complement, top nibble 0xA (junk).
    const stored = [-1000, -1, 0, 40, 2047, -2048];
    const words = stored.map((v) => 0xa000 | (v & 0x0fff));
    const file = writeDicom(
      greyImage(u16(words), [
        { tag: 0x00280101, vr: "US", value: [12] },
        { tag: 0x00280102, vr: "US", value: [11] },
        { tag: 0x00280103, vr: "US", value: [1] },
        { tag: 0x00281052, vr: "DS", value: "-24" },
        { tag: 0x00281053, vr: "DS", value: "1.5" },
      ]),
    );
    // Execute
    const ct = await read(file);
    const out = toModelInput(ct.frame, {
      width: 3,
      height: 2,
      channels: 1,
      window: { center: 0, width: 100 },
    });
    // Assert
    expect(Array.from(storedValues(ct.frame))).toEqual(stored);
    const hu = stored.map((v) => 1.5 * v - 24);
    expect(Array.from(out)).toEqual(
      Array.from(Float32Array.from(hu.map((x) => (x <= -50 ? 0 : x > 49 ? 1 : (x + 0.5) / 99 + 0.5)))),
    );
  });

  it("selects frames of a native multi-frame file by index or as the middle one", async () => {
    const frames = [10, 20, 30, 40, 50];
    const pixels = u16(frames.flatMap((v) => Array(6).fill(v)));
    const file = writeDicom(greyImage(pixels, [{ tag: 0x00280008, vr: "IS", value: "5" }]));
    expect((await read(file, { frame: "middle" })).frame.samples[0]).toBe(30);
    expect(Array.from((await read(file, { frame: 4 })).frame.samples)).toEqual(Array(6).fill(50));
    const error = await readDicom(file, { fileName: "five.dcm", frame: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DicomError);
    expect((error as DicomError).problem).toBe("no-such-frame");
  });

  it("reports Pixel Data shorter than rows × columns × frames × bytes, for any frame asked", async () => {
    const file = writeDicom(greyImage(u16(Array(12).fill(7)), [{ tag: 0x00280008, vr: "IS", value: "3" }]));
    const error = await failure(file);
    expect(error.problem).toBe("bad-pixel-data");
    expect(error.message).toMatch(
      /Pixel Data holds 24 bytes, but 3 frame\(s\) of 2×3×1 samples of 16 bits need 36/,
    );
    expect(error.offset).toBeGreaterThan(132);
  });

  it("reports malformed attribute values by name and value", async () => {
    const frames = await failure(
      writeDicom(greyImage(u16(Array(6).fill(0)), [{ tag: 0x00280008, vr: "IS", value: "1A" }])),
    );
    expect(frames.message).toBe('synthetic.dcm: Number of Frames (0028,0008) is "1A", not an integer');
    const slope = await failure(
      writeDicom(greyImage(u16(Array(6).fill(0)), [{ tag: 0x00281053, vr: "DS", value: "abc" }])),
    );
    expect(slope.problem).toBe("bad-attribute");
    expect(slope.message).toMatch(/Rescale Slope \(0028,1053\) is "abc", not a number/);
    const bits = await failure(
      writeDicom(greyImage(u16(Array(6).fill(0)), [{ tag: 0x00280101, vr: "US", value: [17] }])),
    );
    expect(bits.message).toMatch(/Bits Stored 17 does not fit in Bits Allocated 16/);
  });

  it("reports missing image attributes and image kinds it does not read", async () => {
    const noRows = greyImage(u16(Array(6).fill(0))).filter((e) => e.tag !== 0x00280010);
    expect((await failure(writeDicom(noRows))).message).toMatch(/has Pixel Data but no Rows \(0028,0010\)/);
    const palette = await failure(
      writeDicom(greyImage(new Uint8Array(6), [{ tag: 0x00280004, vr: "CS", value: "PALETTE COLOR" }])),
    );
    expect([palette.problem, palette.message]).toEqual([
      "unsupported",
      "synthetic.dcm: it is PALETTE COLOR (indexed colour through a lookup table), which this importer does not read",
    ]);
    const oneBit = await failure(
      writeDicom(greyImage(new Uint8Array(2), [{ tag: 0x00280100, vr: "US", value: [1] }])),
    );
    expect(oneBit.message).toMatch(/1 bit each/);
  });

  it("names an unsupported transfer syntax, and still skips non-images written in one", async () => {
    const htj2k = "1.2.840.10008.1.2.4.201";
    const image = await failure(writeDicom(greyImage(u16(Array(6).fill(0))), { transferSyntaxUid: htj2k }));
    expect(image.problem).toBe("unsupported-transfer-syntax");
    expect(image.message).toMatch(
      /1\.2\.840\.10008\.1\.2\.4\.201 \(High-Throughput JPEG 2000 Image Compression \(Lossless Only\)\), which this importer cannot decode/,
    );
    const unknown = await failure(
      writeDicom(greyImage(u16(Array(6).fill(0))), { transferSyntaxUid: "1.2.3.4.5" }),
    );
    expect(unknown.message).toMatch(/1\.2\.3\.4\.5 \(not a transfer syntax this importer knows\)/);
    const report = writeDicom([{ tag: 0x00080016, vr: "UI", value: "1.2.840.10008.5.1.4.1.1.88.22" }], {
      transferSyntaxUid: htj2k,
    });
    expect(await readDicom(report, { fileName: "sr.dcm" })).toMatchObject({
      kind: "skip",
      reason: expect.stringMatching(/Structured Report/),
    });
  });

  it("refuses compressed syntaxes over native pixels", async () => {
    const error = await failure(
      writeDicom(greyImage(u16(Array(6).fill(0))), { transferSyntaxUid: "1.2.840.10008.1.2.4.50" }),
    );
    expect(error.problem).toBe("bad-pixel-data");
    expect(error.message).toMatch(/is compressed but its Pixel Data is not encapsulated/);
  });

  it("reads a data set without preamble and meta group, and a meta group without preamble", async () => {
    const whole = writeDicom(greyImage(u16([1, 2, 3, 4, 5, 6])));
    const metaLength = new DataView(whole.buffer).getUint32(140, true);
    const bare = whole.subarray(132 + 12 + metaLength);
    const noPreamble = whole.subarray(132);
    for (const bytes of [bare, noPreamble]) {
      expect(looksLikeDicom(bytes)).toBe(true);
      expect(Array.from((await read(bytes)).frame.samples)).toEqual([1, 2, 3, 4, 5, 6]);
    }
    expect((await read(bare)).warnings).toEqual([
      "No transfer syntax in the file; its data set reads as 1.2.840.10008.1.2.1 (Explicit VR Little Endian).",
    ]);
    expect(looksLikeDicom(new TextEncoder().encode("PatientID,label\nA,1\n"))).toBe(false);
  });

  it("refuses a bare data set that reads as DICOM in no encoding rather than guess", async () => {
    // (0008,0005) CS of length 0, then a tag going backwards: not explicit VR; as implicit VR the first
    // length (0x5343) runs past the end; as big endian the first group (0x0800) is implausible.
    const bytes = new Uint8Array([0x08, 0x00, 0x05, 0x00, 0x43, 0x53, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    const error = await failure(bytes);
    expect([error.problem, error.offset]).toEqual(["unknown-encoding", 0]);
    expect(looksLikeDicom(bytes)).toBe(false);
  });

  it("returns only the label keys asked for, and never the patient's name", async () => {
    const file = writeDicom(greyImage(u16(Array(6).fill(0))));
    const result = await readDicom(file, { fileName: "k.dcm", labelKeys: ["PatientID", "AccessionNumber"] });
    if (result.kind !== "image") throw new Error("expected an image");
    expect(result.labelKeys).toEqual({ PatientID: "PID-0007" });
    expect(JSON.stringify({ ...result, frame: undefined })).not.toContain("Doe");
  });

  it("writes elements as PS3.5 says: explicit VR little endian, values padded to even length", () => {
    expect(Array.from(encode({ tag: 0x00100020, vr: "LO", value: "ABC" }))).toEqual([
      0x10, 0x00, 0x20, 0x00, 0x4c, 0x4f, 0x04, 0x00, 0x41, 0x42, 0x43, 0x20,
    ]);
    expect(Array.from(encode({ tag: 0x7fe00010, vr: "OB", value: new Uint8Array([9]) }))).toEqual([
      0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x00,
    ]);
  });

  it("synthesizes the benchmark's 512×512 CT slice and times it", async () => {
    const slice = await read(await synthesizeCtSlice());
    expect([slice.rows, slice.columns, slice.modality, slice.frame.rescaleIntercept]).toEqual([
      512,
      512,
      "CT",
      -1024,
    ]);
    const hu = (row: number, column: number) =>
      (storedValues(slice.frame)[row * 512 + column] as number) - 1024;
    expect(Math.abs(hu(256, 256) - 40)).toBeLessThanOrEqual(20); // soft tissue
    expect(Math.abs(hu(240, 180) + 800)).toBeLessThanOrEqual(20); // lung
    expect(Math.abs(hu(5, 5) + 1000)).toBeLessThanOrEqual(20); // air
    const result = await benchDicomSlices(3);
    expect(result.slices).toBe(3);
    expect(result.slicesPerSecond).toBeGreaterThan(0);
    expect(result.readMs + result.modelInputMs).toBeLessThanOrEqual(result.ms + 1);
  });
});
