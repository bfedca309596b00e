/**
 * A sequential DCT JPEG decoder (ITU-T T.81 processes 1, 2 and 4: baseline and extended, Huffman coded,
 * 8- or 12-bit samples) for what libjpeg-turbo's 8-bit WebAssembly build cannot read: the 12-bit JPEG
 * Extended of transfer syntax 1.2.840.10008.1.2.4.51. Written from T.81 because no maintained npm package
 * decodes 12-bit lossy JPEG on its own: Cornerstone's libjpeg-turbo build is 8-bit only,
 * jpeg-lossless-decoder-js is lossless only, and the 12-bit decoder inside @cornerstonejs/dicom-image-loader
 * is not exported (and that package needs @cornerstonejs/core). The IDCT is IJG's integer "islow"
 * algorithm, so samples agree exactly with libjpeg-based decoders (pydicom's values for JPGExtended.dcm).
 */

export interface JpegImage {
  width: number;
  height: number;
  components: number;
  precision: number;
  /** Samples as coded (no colour conversion), pixel-interleaved: Uint8Array for 8-bit precision, Uint16Array for 12. */
  data: Uint8Array | Uint16Array;
}

export interface JpegFrameHeader {
  /** The SOF marker's low nibble: 0 baseline, 1 extended, 2 progressive, 3 lossless, others hierarchical/arithmetic. */
  process: number;
  precision: number;
  width: number;
  height: number;
  components: number;
  /** Component identifiers from the SOF, in order. */
  componentIds: number[];
  /** An APP0 JFIF segment came before the frame: its components are YCbCr. */
  jfif: boolean;
  /** The APP14 Adobe segment's transform flag (0: none, 1: YCbCr, 2: YCCK), if there is one. */
  adobeTransform: number | undefined;
}

/** Largest frame decoded (2^28 samples per component): a header cannot make us allocate gigabytes. */
const MAX_SAMPLES = 2 ** 28;

/** T.81 Figure A.6: zig-zag order index → natural (row-major) position. */
const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]);

interface Huffman {
  maxCode: Int32Array;
  valPtr: Int32Array;
  minCode: Int32Array;
  values: Uint8Array;
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Blocks per line and column as allocated (whole MCUs). */
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks that hold the component's own samples (non-interleaved scans cover only these). */
  ownBlocksPerLine: number;
  ownBlocksPerColumn: number;
  /** Decoded samples, level-shifted and clamped. */
  plane: Int32Array;
  prediction: number;
}

/** Reads the markers up to the SOF without decoding; undefined when the bytes hold no SOF before the first scan. */
export function jpegFrameHeader(bytes: Uint8Array): JpegFrameHeader | undefined {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let pos = 2;
  let jfif = false;
  let adobeTransform: number | undefined;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return undefined;
    const marker = bytes[pos + 1] as number;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const length = ((bytes[pos + 2] as number) << 8) | (bytes[pos + 3] as number);
    const body = pos + 4;
    if (marker === 0xe0 && ascii(bytes, body, 4) === "JFIF") jfif = true;
    if (marker === 0xee && ascii(bytes, body, 5) === "Adobe" && length >= 14)
      adobeTransform = bytes[body + 11];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const count = bytes[body + 5] as number;
      if (body + 6 + 3 * count > bytes.length) return undefined;
      return {
        process: marker - 0xc0,
        precision: bytes[body] as number,
        height: ((bytes[body + 1] as number) << 8) | (bytes[body + 2] as number),
        width: ((bytes[body + 3] as number) << 8) | (bytes[body + 4] as number),
        components: count,
        componentIds: Array.from({ length: count }, (_, i) => bytes[body + 6 + 3 * i] as number),
        jfif,
        adobeTransform,
      };
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    pos += 2 + length;
  }
  return undefined;
}

/**
 * Whether a 3-component stream is YCbCr by what the stream itself says, with libjpeg's rules: an Adobe
 * segment's transform flag, a JFIF segment, or component ids 1, 2, 3 (YCbCr) or 'R', 'G', 'B' (RGB).
 * Undefined for any other ids: libjpeg then guesses YCbCr, and a DICOM file's Photometric Interpretation
 * should decide instead (pydicom's SC_jpeg_no_color_transform.dcm has ids 0, 1, 2 and RGB samples, while
 * SC_rgb_jpeg_lossy_gdcm.dcm says RGB over a stream with ids 1, 2, 3 that is YCbCr 4:2:0).
 */
export function streamSaysYcbcr(header: JpegFrameHeader): boolean | undefined {
  if (header.adobeTransform !== undefined) return header.adobeTransform !== 0;
  if (header.jfif) return true;
  const [a, b, c] = header.componentIds;
  if (a === 1 && b === 2 && c === 3) return true;
  if (a === 0x52 && b === 0x47 && c === 0x42) return false;
  return undefined;
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

export function decodeJpegDct(bytes: Uint8Array): JpegImage {
  const quant: (Int32Array | undefined)[] = [];
  const dc: (Huffman | undefined)[] = [];
  const ac: (Huffman | undefined)[] = [];
  let components: Component[] = [];
  let width = 0;
  let height = 0;
  let precision = 8;
  let maxH = 1;
  let maxV = 1;
  let restartInterval = 0;
  let scans = 0;
  let pos = 0;
  const u16 = (at: number): number => {
    if (at + 2 > bytes.length) throw new Error("the JPEG data ends inside a marker segment");
    return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
  };
  if (u16(0) !== 0xffd8) throw new Error("the frame does not start with a JPEG SOI marker");
  pos = 2;
  for (;;) {
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++; // tolerate junk between segments
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) break;
    const marker = 0xff00 | (bytes[pos++] as number);
    if (marker === 0xffd9) break;
    if (marker === 0xffd8 || (marker >= 0xffd0 && marker <= 0xffd7) || marker === 0xff01) continue;
    const length = u16(pos);
    const body = pos + 2;
    const end = pos + length;
    if (end > bytes.length)
      throw new Error(`JPEG marker ${marker.toString(16)} runs past the end of the data`);
    switch (marker) {
      case 0xffdb: {
        let at = body;
        while (at < end) {
          const pq = (bytes[at] as number) >> 4;
          const tq = (bytes[at] as number) & 15;
          at++;
          const table = new Int32Array(64);
          for (let k = 0; k < 64; k++) {
            table[k] = pq === 0 ? (bytes[at + k] as number) : u16(at + 2 * k);
          }
          at += pq === 0 ? 64 : 128;
          quant[tq] = table;
        }
        break;
      }
      case 0xffc4: {
        let at = body;
        while (at < end) {
          const tc = (bytes[at] as number) >> 4;
          const th = (bytes[at] as number) & 15;
          const counts = bytes.subarray(at + 1, at + 17);
          const total = counts.reduce((a, b) => a + b, 0);
          const table = buildHuffman(counts, bytes.subarray(at + 17, at + 17 + total));
          if (tc === 0) dc[th] = table;
          else ac[th] = table;
          at += 17 + total;
        }
        break;
      }
      case 0xffc0:
      case 0xffc1: {
        precision = bytes[body] as number;
        height = u16(body + 1);
        width = u16(body + 3);
        const count = bytes[body + 5] as number;
        if (precision !== 8 && precision !== 12)
          throw new Error(`JPEG sample precision ${precision} is not 8 or 12`);
        if (height === 0) throw new Error("JPEG frames whose height comes in a DNL marker are not supported");
        if (count < 1 || count > 4 || width === 0 || width * height > MAX_SAMPLES) {
          throw new Error(
            `a JPEG frame of ${width}×${height} with ${count} components is not one this decoder takes`,
          );
        }
        components = [];
        for (let i = 0; i < count; i++) {
          const at = body + 6 + 3 * i;
          const hv = bytes[at + 1] as number;
          components.push({
            id: bytes[at] as number,
            h: Math.max(1, hv >> 4),
            v: Math.max(1, hv & 15),
            tq: bytes[at + 2] as number,
            blocksPerLine: 0,
            blocksPerColumn: 0,
            ownBlocksPerLine: 0,
            ownBlocksPerColumn: 0,
            plane: new Int32Array(0),
            prediction: 0,
          });
        }
        maxH = Math.max(...components.map((c) => c.h));
        maxV = Math.max(...components.map((c) => c.v));
        const mcusPerLine = Math.ceil(width / (8 * maxH));
        const mcusPerColumn = Math.ceil(height / (8 * maxV));
        for (const c of components) {
          c.blocksPerLine = mcusPerLine * c.h;
          c.blocksPerColumn = mcusPerColumn * c.v;
          c.ownBlocksPerLine = Math.ceil(Math.ceil((width * c.h) / maxH) / 8);
          c.ownBlocksPerColumn = Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
          c.plane = new Int32Array(c.blocksPerLine * c.blocksPerColumn * 64);
        }
        break;
      }
      case 0xffdd:
        restartInterval = u16(body);
        break;
      case 0xffda: {
        if (components.length === 0) throw new Error("the JPEG scan comes before its frame header");
        const count = bytes[body] as number;
        const inScan: { component: Component; dc: Huffman; ac: Huffman }[] = [];
        for (let i = 0; i < count; i++) {
          const id = bytes[body + 1 + 2 * i] as number;
          const tables = bytes[body + 2 + 2 * i] as number;
          const component = components.find((c) => c.id === id);
          const dcTable = dc[tables >> 4];
          const acTable = ac[tables & 15];
          if (component === undefined)
            throw new Error(`the JPEG scan names component ${id}, which the frame lacks`);
          if (dcTable === undefined || acTable === undefined)
            throw new Error("the JPEG scan uses an undefined Huffman table");
          inScan.push({ component, dc: dcTable, ac: acTable });
        }
        // Ss, Se, Ah, Al (3 bytes) follow; sequential DCT ignores them (some encoders write them wrong).
        pos = decodeScan(bytes, end, inScan, quant, restartInterval, {
          maxH,
          maxV,
          width,
          height,
          precision,
        });
        scans++;
        continue;
      }
      default:
        if (marker === 0xffc2 || marker === 0xffc6 || marker === 0xffca || marker === 0xffce) {
          throw new Error(
            "progressive JPEG is not supported (transfer syntaxes 1.2.840.10008.1.2.4.50/.51 exclude it)",
          );
        }
        if (marker === 0xffc3 || marker === 0xffc7 || marker === 0xffcb || marker === 0xffcf) {
          throw new Error("this is lossless JPEG, not DCT JPEG");
        }
        if (marker >= 0xffc5 && marker <= 0xffcf && marker !== 0xffc8 && marker !== 0xffcc) {
          throw new Error(
            `JPEG process of marker ${marker.toString(16)} (hierarchical or arithmetic) is not supported`,
          );
        }
    }
    pos = end;
  }
  if (scans === 0) throw new Error("the JPEG data has no scan");
  return {
    width,
    height,
    components: components.length,
    precision,
    data: assemble(components, width, height, precision, maxH, maxV),
  };
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  // T.81 Annex C (code generation) and F.2.2.3 (MINCODE, MAXCODE, VALPTR).
  const maxCode = new Int32Array(18).fill(-1);
  const minCode = new Int32Array(17);
  const valPtr = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const n = counts[l - 1] as number;
    if (n > 0) {
      valPtr[l] = k;
      minCode[l] = code;
      code += n;
      k += n;
      maxCode[l] = code - 1;
    }
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff;
  return { maxCode, minCode, valPtr, values: values.slice() };
}

/** Decodes one scan's MCUs into the components' planes; returns the position of the marker after it. */
function decodeScan(
  bytes: Uint8Array,
  start: number,
  scan: { component: Component; dc: Huffman; ac: Huffman }[],
  quant: (Int32Array | undefined)[],
  restartInterval: number,
  frame: { maxH: number; maxV: number; width: number; height: number; precision: number },
): number {
  const { maxH, maxV, width, height, precision } = frame;
  let pos = start;
  let bitBuffer = 0;
  let bitCount = 0;
  const readBit = (): number => {
    if (bitCount === 0) {
      let byte = 0;
      if (pos < bytes.length) {
        byte = bytes[pos] as number;
        if (byte === 0xff) {
          const next = bytes[pos + 1];
          if (next === 0x00) pos += 2;
          else byte = 0; // a marker: the scan's data ran out; feed zeros, as libjpeg does
        } else {
          pos++;
        }
      }
      bitBuffer = byte;
      bitCount = 8;
    }
    bitCount--;
    return (bitBuffer >> bitCount) & 1;
  };
  const receive = (s: number): number => {
    let v = 0;
    for (let i = 0; i < s; i++) v = (v << 1) | readBit();
    return v;
  };
  const extend = (v: number, s: number): number => (v < 1 << (s - 1) ? v - (1 << s) + 1 : v);
  const decodeHuffman = (table: Huffman): number => {
    let code = readBit();
    let l = 1;
    while (code > (table.maxCode[l] as number)) {
      code = (code << 1) | readBit();
      l++;
      if (l > 16) throw new Error("the JPEG data holds a Huffman code that no table defines");
    }
    const value = table.values[(table.valPtr[l] as number) + code - (table.minCode[l] as number)];
    if (value === undefined) throw new Error("the JPEG data uses a Huffman code its table has no value for");
    return value;
  };
  const coefficients = new Float64Array(64);
  const work = new Float64Array(64);
  const decodeBlock = (
    c: Component,
    dcTable: Huffman,
    acTable: Huffman,
    blockRow: number,
    blockCol: number,
  ): void => {
    const q = quant[c.tq];
    if (q === undefined)
      throw new Error(`the JPEG frame uses quantisation table ${c.tq}, which is not defined`);
    coefficients.fill(0);
    const t = decodeHuffman(dcTable);
    const diff = t === 0 ? 0 : extend(receive(t), t);
    c.prediction += diff;
    coefficients[0] = c.prediction * (q[0] as number);
    for (let k = 1; k < 64; ) {
      const rs = decodeHuffman(acTable);
      const r = rs >> 4;
      const s = rs & 15;
      if (s === 0) {
        if (r !== 15) break;
        k += 16;
        continue;
      }
      k += r;
      if (k > 63) throw new Error("the JPEG data runs past the end of an 8×8 block");
      coefficients[ZIGZAG[k] as number] = extend(receive(s), s) * (q[k] as number);
      k++;
    }
    idct(coefficients, work, c, blockRow, blockCol, precision);
  };
  const single = scan.length === 1;
  const first = scan[0] as { component: Component; dc: Huffman; ac: Huffman };
  const mcusPerLine = single ? first.component.ownBlocksPerLine : Math.ceil(width / (8 * maxH));
  const mcuCount = single
    ? first.component.ownBlocksPerLine * first.component.ownBlocksPerColumn
    : mcusPerLine * Math.ceil(height / (8 * maxV));
  for (const s of scan) s.component.prediction = 0;
  for (let mcu = 0; mcu < mcuCount; mcu++) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
      // RSTn (T.81 E.2.4): byte-align, skip to the marker, reset DC predictions.
      bitCount = 0;
      while (
        pos + 1 < bytes.length &&
        !(bytes[pos] === 0xff && (bytes[pos + 1] as number) >= 0xd0 && (bytes[pos + 1] as number) <= 0xd7)
      ) {
        if (bytes[pos] === 0xff && bytes[pos + 1] !== 0x00 && bytes[pos + 1] !== 0xff) break;
        pos++;
      }
      if (bytes[pos] === 0xff && (bytes[pos + 1] as number) >= 0xd0 && (bytes[pos + 1] as number) <= 0xd7)
        pos += 2;
      for (const s of scan) s.component.prediction = 0;
    }
    const mcuRow = Math.floor(mcu / mcusPerLine);
    const mcuCol = mcu % mcusPerLine;
    if (single) {
      decodeBlock(first.component, first.dc, first.ac, mcuRow, mcuCol);
      continue;
    }
    for (const { component: c, dc, ac } of scan) {
      for (let v = 0; v < c.v; v++) {
        for (let h = 0; h < c.h; h++) decodeBlock(c, dc, ac, mcuRow * c.v + v, mcuCol * c.h + h);
      }
    }
  }
  // Find the next marker that is not a restart marker or stuffing.
  while (pos + 1 < bytes.length) {
    if (bytes[pos] === 0xff) {
      const next = bytes[pos + 1] as number;
      if (next !== 0x00 && !(next >= 0xd0 && next <= 0xd7)) return pos;
    }
    pos++;
  }
  return bytes.length;
}

// Fixed-point constants of the islow IDCT: FIX(x) = round(x · 2^13) (IJG jidctint.c, Loeffler–Ligtenberg–Moschytz).
const CONST_BITS = 13;
const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

/** Rounding right shift by n bits, as IJG's DESCALE (floor division keeps it exact for any sign and size). */
function descale(x: number, n: number): number {
  return Math.floor((x + 2 ** (n - 1)) / 2 ** n);
}

/**
 * One block's inverse DCT (T.81 A.3.3) into the component's plane, level-shifted and clamped. The integer
 * "islow" algorithm of IJG libjpeg (jidctint.c), so samples match libjpeg, libjpeg-turbo, DCMTK and GDCM
 * exactly rather than to ±1, which a float IDCT gives when a value sits near .5.
 */
function idct(
  f: Float64Array,
  work: Float64Array,
  c: Component,
  blockRow: number,
  blockCol: number,
  precision: number,
): void {
  const pass1 = precision === 8 ? 2 : 1;
  for (let col = 0; col < 8; col++) {
    const at = (row: number) => f[row * 8 + col] as number;
    const even = oddEven(at(0), at(2), at(4), at(6), at(1), at(3), at(5), at(7));
    for (let k = 0; k < 8; k++) work[k * 8 + col] = descale(even[k] as number, CONST_BITS - pass1);
  }
  const max = 2 ** precision - 1;
  const center = 2 ** (precision - 1);
  const stride = c.blocksPerLine * 8;
  const origin = blockRow * 8 * stride + blockCol * 8;
  for (let row = 0; row < 8; row++) {
    const at = (k: number) => work[row * 8 + k] as number;
    const out = oddEven(at(0), at(2), at(4), at(6), at(1), at(3), at(5), at(7));
    for (let k = 0; k < 8; k++) {
      const v = descale(out[k] as number, CONST_BITS + pass1 + 3) + center;
      c.plane[origin + row * stride + k] = v < 0 ? 0 : v > max ? max : v;
    }
  }
}

const butterfly = new Float64Array(8);

/** The 1-D 8-point islow butterfly of jidctint.c on inputs 0..7; returns outputs 0..7 before descaling. */
function oddEven(
  d0: number,
  d2: number,
  d4: number,
  d6: number,
  d1: number,
  d3: number,
  d5: number,
  d7: number,
): Float64Array {
  // Even part.
  let z1 = (d2 + d6) * FIX_0_541196100;
  const tmp2e = z1 - d6 * FIX_1_847759065;
  const tmp3e = z1 + d2 * FIX_0_765366865;
  const tmp0e = (d0 + d4) * 2 ** CONST_BITS;
  const tmp1e = (d0 - d4) * 2 ** CONST_BITS;
  const tmp10 = tmp0e + tmp3e;
  const tmp13 = tmp0e - tmp3e;
  const tmp11 = tmp1e + tmp2e;
  const tmp12 = tmp1e - tmp2e;
  // Odd part.
  z1 = d7 + d1;
  let z2 = d5 + d3;
  let z3 = d7 + d3;
  let z4 = d5 + d1;
  const z5 = (z3 + z4) * FIX_1_175875602;
  let tmp0 = d7 * FIX_0_298631336;
  let tmp1 = d5 * FIX_2_053119869;
  let tmp2 = d3 * FIX_3_072711026;
  let tmp3 = d1 * FIX_1_501321110;
  z1 *= -FIX_0_899976223;
  z2 *= -FIX_2_562915447;
  z3 = z3 * -FIX_1_961570560 + z5;
  z4 = z4 * -FIX_0_390180644 + z5;
  tmp0 += z1 + z3;
  tmp1 += z2 + z4;
  tmp2 += z2 + z3;
  tmp3 += z1 + z4;
  butterfly[0] = tmp10 + tmp3;
  butterfly[7] = tmp10 - tmp3;
  butterfly[1] = tmp11 + tmp2;
  butterfly[6] = tmp11 - tmp2;
  butterfly[2] = tmp12 + tmp1;
  butterfly[5] = tmp12 - tmp1;
  butterfly[3] = tmp13 + tmp0;
  butterfly[4] = tmp13 - tmp0;
  return butterfly;
}

/** Upsamples subsampled components by repetition and interleaves them. */
function assemble(
  components: Component[],
  width: number,
  height: number,
  precision: number,
  maxH: number,
  maxV: number,
): Uint8Array | Uint16Array {
  const n = components.length;
  const out = precision > 8 ? new Uint16Array(width * height * n) : new Uint8Array(width * height * n);
  components.forEach((c, ci) => {
    const stride = c.blocksPerLine * 8;
    for (let y = 0; y < height; y++) {
      const row = Math.floor((y * c.v) / maxV) * stride;
      for (let x = 0; x < width; x++) {
        out[(y * width + x) * n + ci] = c.plane[row + Math.floor((x * c.h) / maxH)] as number;
      }
    }
  });
  return out;
}
