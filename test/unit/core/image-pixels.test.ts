import { describe, expect, it } from "vitest";
import { LUMA_WEIGHTS } from "../../../src/core/image/colour";
import { chooseFrame, type DecodedFrame } from "../../../src/core/image/frame";
import { toModelInput } from "../../../src/core/image/model-input";
import { storedValues } from "../../../src/core/image/stored-values";
import { applyLinearVoi, linearVoi } from "../../../src/core/image/voi";

/** A frame with defaults for a 16-bit unsigned grey image; `samples` decides the size when rows/columns are not given. */
function frame(over: Partial<DecodedFrame> & Pick<DecodedFrame, "samples">): DecodedFrame {
  const spp = over.samplesPerPixel ?? 1;
  const perPixel = over.photometric === "YBR_FULL_422" ? 2 : spp;
  return {
    rows: 1,
    columns: over.samples.length / perPixel,
    samplesPerPixel: 1,
    bitsAllocated: (over.samples.BYTES_PER_ELEMENT * 8) as 8 | 16 | 32,
    bitsStored: over.samples.BYTES_PER_ELEMENT * 8,
    highBit: over.samples.BYTES_PER_ELEMENT * 8 - 1,
    pixelRepresentation: 0,
    photometric: "MONOCHROME2",
    planarConfiguration: 0,
    rescaleSlope: 1,
    rescaleIntercept: 0,
    ...over,
  };
}

/** The same size as the frame, so no resampling: each output value is one pixel's. */
function native(f: DecodedFrame, channels: 1 | 3 = 1, window?: { center: number; width: number }) {
  return toModelInput(f, { width: f.columns, height: f.rows, channels, ...(window ? { window } : {}) });
}

/** PS3.3 C.11.2.1.2.1 written out once more, from the standard's text, to check the implementation against. */
function standardWindow(x: number, c: number, w: number): number {
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 1;
  return (x - (c - 0.5)) / (w - 1) + 0.5;
}

describe("stored values (PS3.5 8.1.1)", () => {
  it("sign-extends 12-bit two's complement stored in 16-bit words and masks the high bits", () => {
    // Prepare: 12 bits stored, high bit 11, signed; the top 4 bits hold junk (old overlay bits).
    const samples = Uint16Array.from([0x0000, 0x07ff, 0x0800, 0x0fff, 0xf123, 0xa800]);
    // Execute
    const values = storedValues(frame({ samples, bitsStored: 12, highBit: 11, pixelRepresentation: 1 }));
    // Assert
    expect(Array.from(values)).toEqual([0, 2047, -2048, -1, 0x123, -2048]);
  });

  it("masks without sign extension when Pixel Representation is 0", () => {
    const samples = Uint16Array.from([0xf800, 0x0fff, 0x1001]);
    expect(Array.from(storedValues(frame({ samples, bitsStored: 12, highBit: 11 })))).toEqual([
      0x800, 0xfff, 1,
    ]);
  });

  it("shifts when the high bit is above bitsStored - 1", () => {
    // 10 bits stored in bits 4..13 of the word.
    const word = (v: number) => (v << 4) | 0b1011 | 0xc000;
    const samples = Uint16Array.from([word(0), word(513), word(1023)]);
    const signed = storedValues(frame({ samples, bitsStored: 10, highBit: 13, pixelRepresentation: 1 }));
    expect(Array.from(signed)).toEqual([0, 513 - 1024, -1]);
  });

  it("reads full 32-bit words, unsigned and signed, and 8-bit signed words", () => {
    const u32 = Uint32Array.from([0xffffffff, 0x80000000, 5]);
    expect(Array.from(storedValues(frame({ samples: u32 })))).toEqual([4294967295, 2147483648, 5]);
    expect(Array.from(storedValues(frame({ samples: u32, pixelRepresentation: 1 })))).toEqual([
      -1, -2147483648, 5,
    ]);
    const u8 = Uint8Array.from([0x7f, 0x80, 0xff]);
    expect(Array.from(storedValues(frame({ samples: u8, pixelRepresentation: 1 })))).toEqual([127, -128, -1]);
  });
});

describe("grey levels to [0, 1]", () => {
  it("applies the linear VOI function of PS3.3 C.11.2.1.2.1 to rescaled values", () => {
    // Prepare: CT-like, stored 0..2000 with intercept -1024 and slope 1; window 40/400 (soft tissue).
    const stored = [0, 863, 864, 1000, 1063, 1064, 1263, 1264, 1300, 2000];
    const f = frame({ samples: Uint16Array.from(stored), rescaleIntercept: -1024 });
    // Execute
    const out = native(f, 1, { center: 40, width: 400 });
    // Assert: the edges of the window are at HU -160 (0) and 239 (1), the centre 39.5 maps to 0.5.
    const expected = stored.map((s) => standardWindow(s - 1024, 40, 400));
    expect(Array.from(out)).toEqual(Array.from(Float32Array.from(expected)));
    expect(expected.slice(0, 3)).toEqual([0, 0, 0]);
    expect(out[3]).toBeCloseTo((1000 - 1024 - 39.5) / 399 + 0.5, 6);
    expect(expected.slice(-3)).toEqual([1, 1, 1]);
  });

  it("rescales before windowing, with slope and intercept both used", () => {
    const stored = [0, 10, 20, 30, 40, 50];
    const f = frame({ samples: Uint16Array.from(stored), rescaleSlope: 2.5, rescaleIntercept: -30 });
    const out = native(f, 1, { center: 30, width: 101 });
    expect(Array.from(out)).toEqual(
      Array.from(Float32Array.from(stored.map((s) => standardWindow(2.5 * s - 30, 30, 101)))),
    );
    expect(out[0]).toBe(0); // -30 is below 30 - 0.5 - 50
    expect(out[2]).toBeCloseTo((20 - 29.5) / 100 + 0.5, 6); // stored 20 → 20 in modality units
    expect(out[5]).toBe(1); // 95 is above 30 - 0.5 + 50
  });

  it("treats a window of width 1 as a threshold at c - 0.5", () => {
    const voi = linearVoi({ center: 100, width: 1 });
    expect([99, 99.5, 99.6, 100, 101].map((x) => applyLinearVoi(x, voi))).toEqual([0, 0, 1, 1, 1]);
  });

  it("refuses windows the function is not defined for", () => {
    const f = frame({ samples: Uint16Array.from([1, 2]) });
    for (const window of [
      { center: 0, width: 0 },
      { center: 0, width: 0.5 },
      { center: Number.NaN, width: 10 },
      { center: 0, width: Number.POSITIVE_INFINITY },
    ]) {
      expect(() => native(f, 1, window)).toThrow(RangeError);
    }
  });

  it("without a window maps the range Bits Stored can hold onto [0, 1]", () => {
    const unsigned12 = frame({ samples: Uint16Array.from([0, 4095, 2048]), bitsStored: 12, highBit: 11 });
    expect(Array.from(native(unsigned12))).toEqual([0, 1, Math.fround(2048 / 4095)]);
    const signed16 = frame({
      samples: Uint16Array.from([0x8000, 0x7fff, 0]),
      pixelRepresentation: 1,
      rescaleIntercept: -1024,
    });
    expect(Array.from(native(signed16))).toEqual([0, 1, Math.fround(32768 / 65535)]);
    // A negative slope turns the range around: the largest stored value is the smallest modality value.
    const negative = frame({ samples: Uint8Array.from([0, 255]), rescaleSlope: -1 });
    expect(Array.from(native(negative))).toEqual([1, 0]);
  });

  it("inverts MONOCHROME1 after the window: 1 - v of the same pixels read as MONOCHROME2", () => {
    const samples = Uint16Array.from([100, 900, 1500, 2300, 4000]);
    const m2 = frame({ samples, bitsStored: 12, highBit: 11, rescaleSlope: 0.684, rescaleIntercept: 200 });
    const m1 = { ...m2, photometric: "MONOCHROME1" as const };
    for (const window of [undefined, { center: 1200, width: 1400 }]) {
      const a = native(m2, 1, window);
      const b = native(m1, 1, window);
      b.forEach((v, i) => {
        expect(Math.abs(v - (1 - (a[i] as number)))).toBeLessThan(1e-7);
      });
    }
    // The darkest stored value is the brightest output.
    const out = native(m1, 1);
    expect(Array.from(out)).toEqual([...out].sort((x, y) => y - x));
  });
});

describe("colour to [0, 1]", () => {
  const rgb = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [64, 128, 192],
    [255, 255, 255],
    [0, 0, 0],
  ];

  /** PS3.3 C.7.6.3.1.2 forward equations (8-bit), rounded as a writer would store them. */
  function toYbr([r, g, b]: number[]): number[] {
    const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
    return [
      clamp(0.299 * (r as number) + 0.587 * (g as number) + 0.114 * (b as number)),
      clamp(-0.1687 * (r as number) - 0.3313 * (g as number) + 0.5 * (b as number) + 128),
      clamp(0.5 * (r as number) - 0.4187 * (g as number) - 0.0813 * (b as number) + 128),
    ];
  }

  it("divides 8-bit RGB by 255, channel-last", () => {
    const out = native(
      frame({
        samples: Uint8Array.from(rgb.flat()),
        samplesPerPixel: 3,
        photometric: "RGB",
        rows: 1,
        columns: 6,
      }),
      3,
    );
    expect(Array.from(out)).toEqual(Array.from(Float32Array.from(rgb.flat().map((v) => v / 255))));
  });

  it("reads planar configuration 1 (RRR…GGG…BBB) the same as 0", () => {
    const planar = [0, 1, 2].flatMap((c) => rgb.map((p) => p[c] as number));
    const a = native(
      frame({ samples: Uint8Array.from(rgb.flat()), samplesPerPixel: 3, photometric: "RGB", columns: 6 }),
      3,
    );
    const b = native(
      frame({
        samples: Uint8Array.from(planar),
        samplesPerPixel: 3,
        photometric: "RGB",
        columns: 6,
        planarConfiguration: 1,
      }),
      3,
    );
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it("turns YBR_FULL back into RGB within a rounding step", () => {
    const ybr = rgb.map(toYbr);
    const out = native(
      frame({
        samples: Uint8Array.from(ybr.flat()),
        samplesPerPixel: 3,
        photometric: "YBR_FULL",
        columns: 6,
      }),
      3,
    );
    out.forEach((v, i) => {
      expect(Math.abs(v * 255 - (rgb.flat()[i] as number))).toBeLessThanOrEqual(1.5);
    });
  });

  it("expands YBR_FULL_422 (Y1 Y2 Cb Cr per pixel pair) and converts it", () => {
    // Prepare: pairs of pixels that share chroma, as 4:2:2 requires, written Y1 Y2 Cb Cr.
    const pairs = [
      [
        [200, 30, 30],
        [180, 20, 25],
      ],
      [
        [20, 40, 220],
        [30, 50, 230],
      ],
    ];
    const words: number[] = [];
    const expected: number[] = [];
    for (const [p, q] of pairs) {
      const a = toYbr(p as number[]);
      const b = toYbr(q as number[]);
      const cb = Math.round(((a[1] as number) + (b[1] as number)) / 2);
      const cr = Math.round(((a[2] as number) + (b[2] as number)) / 2);
      words.push(a[0] as number, b[0] as number, cb, cr);
      for (const y of [a[0] as number, b[0] as number]) {
        // What the inverse equations give for this pixel's Y with the pair's shared chroma.
        expected.push(
          y + 1.402 * (cr - 128),
          y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
          y + 1.772 * (cb - 128),
        );
      }
    }
    // Execute
    const f = frame({
      samples: Uint8Array.from(words),
      samplesPerPixel: 3,
      photometric: "YBR_FULL_422",
      columns: 4,
    });
    const out = native(f, 3);
    // Assert
    expect(out).toHaveLength(12);
    out.forEach((v, i) => {
      expect(v).toBeCloseTo(Math.max(0, Math.min(255, expected[i] as number)) / 255, 6);
    });
  });

  it("gives BT.601 luma for one channel and repeats grey into three", () => {
    const out = native(
      frame({ samples: Uint8Array.from(rgb.flat()), samplesPerPixel: 3, photometric: "RGB", columns: 6 }),
      1,
    );
    const [wr, wg, wb] = LUMA_WEIGHTS;
    expect(LUMA_WEIGHTS).toEqual([0.299, 0.587, 0.114]);
    rgb.forEach(([r, g, b], i) => {
      expect(out[i]).toBeCloseTo((wr * (r as number) + wg * (g as number) + wb * (b as number)) / 255, 6);
    });
    const grey = native(frame({ samples: Uint8Array.from([0, 51, 255]) }), 3);
    expect(Array.from(grey)).toEqual(Array.from(Float32Array.from([0, 0, 0, 0.2, 0.2, 0.2, 1, 1, 1])));
  });

  it("scales 16-bit colour by 65535, so 8-bit and 16-bit copies of an image agree", () => {
    const eight = frame({
      samples: Uint8Array.from(rgb.flat()),
      samplesPerPixel: 3,
      photometric: "RGB",
      columns: 6,
    });
    const sixteen = frame({
      samples: Uint16Array.from(rgb.flat(), (v) => v * 257),
      samplesPerPixel: 3,
      photometric: "RGB",
      columns: 6,
    });
    expect(Array.from(native(sixteen, 3))).toEqual(Array.from(native(eight, 3)));
  });

  it("does not window colour images (VOI has no meaning for them, PS3.3 C.11.2.1.2)", () => {
    const f = frame({
      samples: Uint8Array.from(rgb.flat()),
      samplesPerPixel: 3,
      photometric: "RGB",
      columns: 6,
    });
    expect(Array.from(native(f, 3, { center: 10, width: 5 }))).toEqual(Array.from(native(f, 3)));
  });
});

describe("model input shape and checks", () => {
  it("is height × width × channels, every value in [0, 1]", () => {
    const f = frame({
      samples: Uint16Array.from({ length: 12 * 20 }, (_, i) => (i * 997) % 65536),
      rows: 12,
      columns: 20,
    });
    for (const [width, height, channels] of [
      [5, 7, 1],
      [40, 3, 3],
      [20, 12, 3],
    ] as const) {
      const out = toModelInput(f, { width, height, channels, window: { center: 30000, width: 20000 } });
      expect(out).toHaveLength(width * height * channels);
      expect(out.every((v) => v >= 0 && v <= 1)).toBe(true);
    }
  });

  it("refuses bad specs and frames whose fields disagree", () => {
    const f = frame({ samples: Uint16Array.from([1, 2, 3, 4]), rows: 2, columns: 2 });
    expect(() => toModelInput(f, { width: 0, height: 2, channels: 1 })).toThrow(/width 0/);
    expect(() => toModelInput(f, { width: 2, height: 2, channels: 2 as 1 })).toThrow(/channels 2/);
    expect(() => toModelInput({ ...f, columns: 3 }, { width: 2, height: 2, channels: 1 })).toThrow(
      /holds 4 samples/,
    );
    expect(() => toModelInput({ ...f, bitsStored: 17 }, { width: 2, height: 2, channels: 1 })).toThrow(
      RangeError,
    );
    expect(() => toModelInput({ ...f, samplesPerPixel: 3 }, { width: 2, height: 2, channels: 1 })).toThrow(
      RangeError,
    );
    expect(() => toModelInput({ ...f, rescaleSlope: 0 }, { width: 2, height: 2, channels: 1 })).toThrow(
      /rescale/,
    );
  });
});

describe("frame choice", () => {
  it("takes an index or the middle frame, floor((n - 1) / 2)", () => {
    expect([1, 2, 3, 4, 15].map((n) => chooseFrame(n, "middle"))).toEqual([0, 0, 1, 1, 7]);
    expect(chooseFrame(15, 14)).toBe(14);
    expect(() => chooseFrame(2, 2)).toThrow(/frame 2 does not exist: the image has 2 frame/);
    expect(() => chooseFrame(2, -1)).toThrow(RangeError);
    expect(() => chooseFrame(2, 0.5)).toThrow(RangeError);
  });
});
