/**
 * Types for the parts of the DICOM packages that ship none. Files that import these modules reference
 * this one (`/// <reference path="./modules.d.ts" />`) so every tsconfig that reaches them sees it.
 */

/** dicom-parser 1.8 exports these (dist/dicomParser.js) but its index.d.ts leaves them out. */
declare module "dicom-parser" {
  export const littleEndianByteArrayParser: ByteArrayParser;
  export const bigEndianByteArrayParser: ByteArrayParser;
  export const DataSet: new (
    byteArrayParser: ByteArrayParser,
    byteArray: ByteArray,
    elements: Record<string, Element>,
  ) => DataSet;
  export function parseDicomDataSetExplicit(
    dataSet: DataSet,
    byteStream: ByteStream,
    maxPosition?: number,
    options?: ParseDicomOptions,
  ): void;
  export function parseDicomDataSetImplicit(
    dataSet: DataSet,
    byteStream: ByteStream,
    maxPosition?: number,
    options?: ParseDicomOptions,
  ): void;
  export function findEndOfEncapsulatedElement(
    byteStream: ByteStream,
    element: Element,
    warnings?: string[],
  ): void;
  export function createJPEGBasicOffsetTable(
    dataSet: DataSet,
    pixelDataElement: Element,
    fragments?: Fragment[],
  ): number[];
}

/** The emscripten builds of the Cornerstone codecs: a factory taking Module options, resolving to the module. */
declare module "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs" {
  const factory: (options?: {
    locateFile?: (path: string, prefix: string) => string;
    wasmBinary?: ArrayBuffer | Uint8Array;
    print?: (text: string) => void;
    printErr?: (text: string) => void;
  }) => Promise<{
    JPEGDecoder: new () => {
      getEncodedBuffer(length: number): Uint8Array;
      getDecodedBuffer(): Uint8Array;
      decode(): void;
      getFrameInfo(): {
        width: number;
        height: number;
        bitsPerSample: number;
        componentCount: number;
        isSigned?: boolean;
      };
      delete(): void;
    };
    getExceptionMessage?: (pointer: number) => string | string[];
  }>;
  export default factory;
}

declare module "@cornerstonejs/codec-charls/decodewasmjs" {
  const factory: (options?: {
    locateFile?: (path: string, prefix: string) => string;
    wasmBinary?: ArrayBuffer | Uint8Array;
    print?: (text: string) => void;
    printErr?: (text: string) => void;
  }) => Promise<{
    JpegLSDecoder: new () => {
      getEncodedBuffer(length: number): Uint8Array;
      getDecodedBuffer(): Uint8Array;
      decode(): void;
      getFrameInfo(): {
        width: number;
        height: number;
        bitsPerSample: number;
        componentCount: number;
        isSigned?: boolean;
      };
      /** 0: none (component planes one after another), 1: line, 2: sample (ITU-T T.87 / CharLS). */
      getInterleaveMode(): number;
      getNearLossless(): number;
      delete(): void;
    };
    getExceptionMessage?: (pointer: number) => string | string[];
  }>;
  export default factory;
}

declare module "@cornerstonejs/codec-openjpeg/decodewasmjs" {
  const factory: (options?: {
    locateFile?: (path: string, prefix: string) => string;
    wasmBinary?: ArrayBuffer | Uint8Array;
    print?: (text: string) => void;
    printErr?: (text: string) => void;
  }) => Promise<{
    J2KDecoder: new () => {
      getEncodedBuffer(length: number): Uint8Array;
      getDecodedBuffer(): Uint8Array;
      decode(): void;
      getFrameInfo(): {
        width: number;
        height: number;
        bitsPerSample: number;
        componentCount: number;
        isSigned?: boolean;
      };
      getColorSpace(): number;
      getIsReversible(): boolean;
      delete(): void;
    };
    getExceptionMessage?: (pointer: number) => string | string[];
  }>;
  export default factory;
}
