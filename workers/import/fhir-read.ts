import { fileBytes, isGzip } from "./file-bytes";

/**
 * Format-level readers for FHIR R4 exports (issue 4): files in, resources out, every bad line or entry
 * reported as a problem instead of stopping the import. Web-standard APIs only (Blob.stream,
 * DecompressionStream, TextDecoder), so the same code runs in the import worker and in Node.
 */

export type FhirResource = { resourceType: string; id?: string; [k: string]: unknown };

export interface FhirProblem {
  file: string;
  /** 1-based line of an NDJSON file. */
  line?: number;
  /** Offset of the line's first byte, counted in the decompressed data when the file is gzipped. */
  byteOffset?: number;
  /** 0-based index into a Bundle's `entry` array. */
  entry?: number;
  /** A full sentence naming the file and place; it never quotes the file's contents (patient data). */
  message: string;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** `bytesRead` counts bytes taken from the file as stored (compressed), so it ends at the file's size. */
  onProgress?(bytesRead: number, totalBytes: number): void;
  /** A longer NDJSON line is skipped unread, so a file without line breaks cannot exhaust memory. */
  maxLineBytes?: number;
  /** A bundle is parsed whole: a file, or its decompressed data, over this size is refused. */
  maxBundleBytes?: number;
  /**
   * NDJSON lines of a resource type the caller does not use are skipped without being parsed (about 60%
   * of a Synthea export is Claims and ExplanationOfBenefits). Only lines that begin with
   * `{"resourceType":"<type>"` are judged by their first bytes; any other line is parsed as usual.
   */
  wantType?: (resourceType: string) => boolean;
}

type OnProblem = (problem: FhirProblem) => void;
type Source = Blob & { name?: string };

const MiB = 1 << 20;
const MAX_LINE_BYTES = 128 * MiB;
const MAX_BUNDLE_BYTES = 512 * MiB;
/** Enough decompressed text to see a pretty-printed bundle's top-level resourceType. */
const SNIFF_BYTES = 64 * 1024;
const BUNDLE_TYPES = ["transaction", "batch", "collection", "searchset"];
const SUPPORTED =
  "fedward reads FHIR JSON: NDJSON files with one resource per line (a Bulk Data export, .ndjson or " +
  ".ndjson.gz) and Bundle files (.json or .json.gz)";

/**
 * Streams an NDJSON file, gzipped or not (decided by the gzip magic bytes, not the name), one resource per
 * non-blank line. Memory is bounded by the longest line: lines are cut on the byte 0x0A, which never occurs
 * inside a multi-byte UTF-8 character, and each line is decoded and parsed on its own.
 */
export async function* readNdjson(
  file: Source,
  onProblem: OnProblem,
  options: ReadOptions = {},
): AsyncGenerator<FhirResource> {
  const name = fileName(file);
  const gzip = await isGzip(file);
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const lines = new LineSplitter(maxLineBytes);
  const { wantType } = options;
  const read = (line: Line) =>
    wantType !== undefined && unwantedType(line.bytes, wantType)
      ? undefined
      : parseLine(line, { file: name, gzip, maxLineBytes, onProblem });
  let failed = false;
  const onError = (error: unknown) => {
    failed = true;
    onProblem(damaged(name, gzip, lines, error));
  };
  for await (const chunk of chunks(fileBytes(file, gzip, options.onProgress), options.signal, onError)) {
    for (const line of lines.push(chunk)) {
      // Per line too, not only per chunk: one chunk can hold a whole in-memory file.
      options.signal?.throwIfAborted();
      const resource = read(line);
      if (resource !== undefined) yield resource;
    }
  }
  // After a read error the unfinished line is part of that one problem.
  const last = failed ? undefined : lines.end();
  const resource = last === undefined ? undefined : read(last);
  if (resource !== undefined) yield resource;
}

/**
 * Reads one Bundle file (.json or .json.gz) and yields its entries' resources with `urn:uuid:` references
 * rewritten to `Type/id`, so they read like a Bulk Data export's. JSON has no streaming parse here, so a
 * single bundle's size bounds memory (text and objects, several times the file): files or decompressed
 * data over `maxBundleBytes` are refused. Bundles are per patient in practice, far below the limit.
 */
export async function* readBundle(
  file: Source,
  onProblem: OnProblem,
  options: ReadOptions = {},
): AsyncGenerator<FhirResource> {
  const name = fileName(file);
  const limit = options.maxBundleBytes ?? MAX_BUNDLE_BYTES;
  const report = (message: string) => onProblem({ file: name, message: `${name} ${message}` });
  if (file.size > limit) return report(tooBig(limit, ""));
  const gzip = await isGzip(file);
  const text = await readText(file, gzip, limit, options, report);
  if (text === undefined) return;
  const entries = bundleEntries(text, name, onProblem);
  if (entries === undefined) return;
  const targets = referenceTargets(entries);
  for (const [index, entry] of entries.entries()) {
    options.signal?.throwIfAborted();
    const resource = entryResource(entry, index, name, onProblem);
    if (resource === undefined) continue;
    rewriteReferences(resource, targets, [], (path) =>
      onProblem(unknownReference(name, index, resource, path)),
    );
    yield resource;
  }
}

/**
 * Picks the reader by content, not by name (exports get renamed): a first JSON object whose top-level
 * resourceType is "Bundle", or that spans several lines, is a bundle file; other JSON objects start an
 * NDJSON file. Anything else (XML, zip, binary) is one problem and nothing is read.
 */
export async function* readFhirFile(
  file: Source,
  onProblem: OnProblem,
  options: ReadOptions = {},
): AsyncGenerator<FhirResource> {
  const kind = classify(await head(file, options.signal));
  const name = fileName(file);
  if (kind === "bundle") yield* readBundle(file, onProblem, options);
  else if (kind === "ndjson") yield* readNdjson(file, onProblem, options);
  else onProblem({ file: name, message: `${name} ${kind.unsupported}. ${SUPPORTED}.` });
}

// --- Bytes ---

function mib(bytes: number): string {
  return `${Number((bytes / MiB).toFixed(3))} MiB`;
}

function fileName(file: Source): string {
  return typeof file.name === "string" && file.name !== "" ? file.name : "the file";
}

/**
 * A reader loop rather than `for await` over the stream, which Safari lacks. A read error (damaged gzip,
 * a file changed on disk) goes to onError and ends the chunks; an abort throws the signal's reason.
 */
async function* chunks(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  onError: (error: unknown) => void,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        signal?.throwIfAborted();
        return onError(error);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Releases the file and the decompressor when the caller stops early; a no-op after the end.
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * About SNIFF_BYTES of the (decompressed) start of the file, from a slice so that a Blob that streams
 * in one piece (Node's in-memory ones) is not read whole. The slice cuts a gzip short: that read error,
 * like a damaged gzip's, only ends the head; the reader proper reports damage.
 */
async function head(file: Blob, signal?: AbortSignal): Promise<Uint8Array> {
  const start = file.slice(0, SNIFF_BYTES);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of chunks(fileBytes(start, await isGzip(file)), signal, () => undefined)) {
    parts.push(chunk);
    size += chunk.byteLength;
    if (size >= SNIFF_BYTES) break;
  }
  return concat(parts, size).subarray(0, SNIFF_BYTES);
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

// --- NDJSON ---

interface Line {
  bytes: Uint8Array;
  number: number;
  offset: number;
  /** False for a last line without a line break: if it does not parse, the file was cut off. */
  ended: boolean;
  tooLong: boolean;
}

/** Cuts a byte stream into lines, keeping only the current line's bytes (and none past maxLineBytes). */
class LineSplitter {
  private parts: Uint8Array[] = [];
  /** Bytes of the current line seen so far, kept or not. */
  private pending = 0;
  nextNumber = 1;
  nextOffset = 0;

  constructor(private readonly maxLineBytes: number) {}

  *push(chunk: Uint8Array): Generator<Line> {
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      yield this.take(chunk.subarray(from, nl), true);
      from = nl + 1;
    }
    this.keep(chunk.subarray(from));
  }

  end(): Line | undefined {
    return this.pending === 0 ? undefined : this.take(new Uint8Array(0), false);
  }

  private keep(rest: Uint8Array) {
    this.pending += rest.byteLength;
    if (this.pending > this.maxLineBytes) this.parts = [];
    else if (rest.byteLength > 0) this.parts.push(rest);
  }

  private take(tail: Uint8Array, ended: boolean): Line {
    const size = this.pending + tail.byteLength;
    const tooLong = size > this.maxLineBytes;
    const bytes = tooLong
      ? new Uint8Array(0)
      : this.pending === 0
        ? tail
        : concat([...this.parts, tail], size);
    const line = { bytes, number: this.nextNumber, offset: this.nextOffset, ended, tooLong };
    this.nextNumber++;
    this.nextOffset += size + (ended ? 1 : 0);
    this.parts = [];
    this.pending = 0;
    return line;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

const TYPE_PREFIX = new TextEncoder().encode('{"resourceType":"');
const QUOTE = 0x22;

/** Whether a line starts `{"resourceType":"<type>"` with a type the caller does not want. */
function unwantedType(bytes: Uint8Array, wantType: (type: string) => boolean): boolean {
  if (bytes.length <= TYPE_PREFIX.length) return false;
  for (let i = 0; i < TYPE_PREFIX.length; i++) if (bytes[i] !== TYPE_PREFIX[i]) return false;
  const end = bytes.indexOf(QUOTE, TYPE_PREFIX.length);
  // Resource type names are short ASCII words; anything else is left to the full parse.
  if (end < 0 || end - TYPE_PREFIX.length > 64) return false;
  let type = "";
  for (let i = TYPE_PREFIX.length; i < end; i++) {
    const c = bytes[i] as number;
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) return false;
    type += String.fromCharCode(c);
  }
  return !wantType(type);
}

interface LineContext {
  file: string;
  gzip: boolean;
  maxLineBytes: number;
  onProblem: OnProblem;
}

function parseLine(
  line: Line,
  { file, gzip, maxLineBytes, onProblem }: LineContext,
): FhirResource | undefined {
  const report = (message: string) => {
    const where = `line ${line.number} (byte ${line.offset}${gzip ? " of the decompressed data" : ""})`;
    onProblem({ file, line: line.number, byteOffset: line.offset, message: `${file}, ${where}: ${message}` });
  };
  if (line.tooLong) {
    report(
      `the line is longer than ${mib(maxLineBytes)} and was skipped unread. NDJSON holds one resource ` +
        "per line; check that this is an NDJSON export.",
    );
    return undefined;
  }
  let text: string;
  try {
    text = utf8.decode(line.bytes);
  } catch {
    report("the line is not valid UTF-8 text and was skipped; FHIR JSON must be saved as UTF-8.");
    return undefined;
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    report(
      line.ended
        ? `invalid JSON (${jsonFault(error, text)}); the line was skipped and the others are read.`
        : `the last line has no line break and is not complete JSON (${jsonFault(error, text)}), so the file ` +
            "looks cut off; the line was skipped. Export or download the file again to get it whole.",
    );
    return undefined;
  }
  const fault = resourceFault(value);
  if (fault === undefined) return value as FhirResource;
  report(`the line is JSON but not a FHIR resource (${fault}); it was skipped.`);
  return undefined;
}

/** Why a value is not a resource, in words that quote nothing from the file. */
function resourceFault(value: unknown): string | undefined {
  if (Array.isArray(value)) return "an array, expected an object with a resourceType";
  if (value === null || typeof value !== "object")
    return `${value === null ? "null" : typeof value}, expected an object`;
  const type = (value as { resourceType?: unknown }).resourceType;
  if (type === undefined) return "an object without resourceType";
  return typeof type === "string" && type !== "" ? undefined : "resourceType is not a non-empty string";
}

/**
 * The parse error in words, without the engine's message: V8's quotes the text (`Unexpected token 'x',
 * "..." is not valid JSON`). Only the place is kept, as V8 (`at position N`) or Firefox (`line L column C`)
 * give it.
 */
function jsonFault(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : "";
  if (/end of (JSON )?(input|data)|unterminated|EOF/i.test(message)) return "unexpected end";
  const v8 = /at position (\d+)/.exec(message);
  const firefox = /line (\d+) column (\d+)/.exec(message);
  let place: { line: number; column: number };
  if (v8) {
    const at = Number(v8[1]);
    if (at >= text.trimEnd().length) return "unexpected end";
    place = placeOf(text, at);
  } else if (firefox) {
    place = { line: Number(firefox[1]), column: Number(firefox[2]) };
  } else {
    return "syntax error";
  }
  const line = place.line === 1 ? "" : `line ${place.line}, `;
  return `syntax error at ${line}character ${place.column}`;
}

function placeOf(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let nl = text.indexOf("\n"); nl !== -1 && nl < at; nl = text.indexOf("\n", nl + 1)) {
    line++;
    start = nl + 1;
  }
  return { line, column: at - start + 1 };
}

/** A stream that fails part-way: a gzip cut off or damaged, or a file that changed or vanished. */
function damaged(file: string, gzip: boolean, lines: LineSplitter, error: unknown): FhirProblem {
  const what = gzip ? "the gzip data is damaged or cut off" : "the file could not be read further";
  const message =
    `${file}: ${what} at line ${lines.nextNumber} (byte ${lines.nextOffset}` +
    `${gzip ? " of the decompressed data" : ""}; ${reasonOf(error)}). The resources before that point were ` +
    "read; export or download the file again, or choose it again if it was moved.";
  return { file, line: lines.nextNumber, byteOffset: lines.nextOffset, message };
}

/** Stream and decompression errors carry no file contents ("unexpected end of file"), so they may be shown. */
function reasonOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
}

// --- Bundles ---

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A type name from the file, quoted only when it looks like one, so free text never reaches a message. */
function typeName(value: unknown): string {
  return typeof value === "string" && /^[A-Za-z-]{1,64}$/.test(value) ? `"${value}"` : "an unexpected value";
}

function tooBig(limit: number, what: string): string {
  return (
    `is larger than ${mib(limit)}${what}. A Bundle is read whole, so split it, or export the data as ` +
    "NDJSON (Bulk Data) instead."
  );
}

async function readText(
  file: Blob,
  gzip: boolean,
  limit: number,
  options: ReadOptions,
  report: (message: string) => void,
): Promise<string | undefined> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const parts: string[] = [];
  let size = 0;
  let failure: string | undefined;
  const onError = (error: unknown) => {
    const what = gzip ? "damaged or cut-off gzip data: " : "";
    failure = `could not be read to the end (${what}${reasonOf(error)}). Nothing was read from it; export or download it again.`;
  };
  for await (const chunk of chunks(fileBytes(file, gzip, options.onProgress), options.signal, onError)) {
    size += chunk.byteLength;
    if (size > limit) return void report(tooBig(limit, " once decompressed"));
    const part = decode(decoder, chunk);
    if (part === undefined) return void report(NOT_UTF8);
    parts.push(part);
  }
  if (failure !== undefined) return void report(failure);
  const rest = decode(decoder);
  if (rest === undefined) return void report(NOT_UTF8);
  return parts.join("") + rest;
}

const NOT_UTF8 = "is not valid UTF-8 text; FHIR JSON must be saved as UTF-8. Nothing was read from it.";

/** Streaming decode (a character may straddle chunks); undefined for bytes that are not UTF-8. */
function decode(decoder: TextDecoder, chunk?: Uint8Array): string | undefined {
  try {
    return chunk === undefined ? decoder.decode() : decoder.decode(chunk, { stream: true });
  } catch {
    return undefined;
  }
}

/** The bundle's entries, or undefined (with a problem) when the file is no bundle fedward reads. */
function bundleEntries(text: string, file: string, onProblem: OnProblem): unknown[] | undefined {
  const report = (message: string) => void onProblem({ file, message: `${file} ${message}` });
  let bundle: unknown;
  try {
    bundle = JSON.parse(text);
  } catch (error) {
    return report(`is not valid JSON (${jsonFault(error, text)}); nothing was read from it.`);
  }
  if (!isObject(bundle) || bundle.resourceType !== "Bundle") {
    const what = resourceFault(bundle) ?? `a single ${typeName((bundle as Json).resourceType)} resource`;
    return report(`is JSON but not a FHIR Bundle (${what}). ${SUPPORTED}.`);
  }
  if (!BUNDLE_TYPES.includes(bundle.type as string)) {
    return report(`is a Bundle of type ${typeName(bundle.type)}; fedward reads ${BUNDLE_TYPES.join(", ")}.`);
  }
  if (bundle.entry === undefined) return [];
  if (Array.isArray(bundle.entry)) return bundle.entry;
  return report("is a Bundle whose entry is not a list; nothing was read from it.");
}

/**
 * fullUrl -> `Type/id` for every entry. An entry without an id gets its urn:uuid as id, as a server
 * would assign one on a transaction, so that the references to it still resolve.
 */
function referenceTargets(entries: unknown[]): Map<string, string> {
  const targets = new Map<string, string>();
  for (const entry of entries) {
    if (!isObject(entry) || typeof entry.fullUrl !== "string" || !isObject(entry.resource)) continue;
    const { fullUrl, resource } = entry;
    if (typeof resource.resourceType !== "string") continue;
    if (resource.id === undefined && fullUrl.startsWith("urn:uuid:")) resource.id = fullUrl.slice(9);
    if (typeof resource.id === "string") targets.set(fullUrl, `${resource.resourceType}/${resource.id}`);
  }
  return targets;
}

function entryResource(entry: unknown, index: number, file: string, onProblem: OnProblem) {
  const resource = isObject(entry) ? entry.resource : undefined;
  const fault = resource === undefined ? "it has no resource" : resourceFault(resource);
  if (fault === undefined) return resource as FhirResource;
  onProblem({ file, entry: index, message: `${file}, entry[${index}]: ${fault}; the entry was skipped.` });
  return undefined;
}

/** Rewrites, in place and at any depth, every `reference` that names an entry's fullUrl. */
function rewriteReferences(
  node: unknown,
  targets: Map<string, string>,
  path: (string | number)[],
  onUnknown: (path: string) => void,
): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      if (typeof item !== "object" || item === null) return;
      path.push(i);
      rewriteReferences(item, targets, path, onUnknown);
      path.pop();
    });
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "reference" && typeof value === "string") {
      const target = targets.get(value);
      if (target !== undefined) node[key] = target;
      else if (/^urn:(uuid|oid):/.test(value)) onUnknown(pathText([...path, key]));
    } else if (typeof value === "object" && value !== null) {
      path.push(key);
      rewriteReferences(value, targets, path, onUnknown);
      path.pop();
    }
  }
}

function pathText(path: (string | number)[]): string {
  return path
    .map((step, i) => (typeof step === "number" ? `[${step}]` : i === 0 ? step : `.${step}`))
    .join("");
}

function unknownReference(file: string, index: number, resource: FhirResource, path: string): FhirProblem {
  const message =
    `${file}, entry[${index}] (${typeName(resource.resourceType)}): ${path} refers to a urn: that no entry ` +
    "of this bundle has, so it was left as it is. If that resource matters, export the bundle with it included.";
  return { file, entry: index, message };
}

// --- Telling formats apart ---

type Kind = "bundle" | "ndjson" | { unsupported: string };

function classify(bytes: Uint8Array): Kind {
  const [b0, b1] = bytes;
  if (b0 === 0x50 && b1 === 0x4b)
    return { unsupported: "is a zip archive; unzip it and choose the files inside" };
  if ((b0 === 0xff && b1 === 0xfe) || (b0 === 0xfe && b1 === 0xff)) {
    return { unsupported: "is UTF-16 text; save it as UTF-8" };
  }
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && [0x20, 0x09, 0x0a, 0x0d].includes(bytes[i] as number)) i++;
  // An empty file is an empty NDJSON file (Bulk Data exports write them): nothing to read, nothing wrong.
  if (i === bytes.length) return "ndjson";
  if (bytes[i] === 0x7b) return firstObject(new TextDecoder().decode(bytes.subarray(i)));
  if (bytes[i] === 0x3c) return { unsupported: "looks like XML; only FHIR JSON is read, so export as JSON" };
  if (bytes[i] === 0x5b) return { unsupported: "is a JSON array, neither NDJSON nor a Bundle" };
  return { unsupported: "is not FHIR JSON (it does not start with a JSON object)" };
}

/**
 * Scans the top level of the first JSON object: resourceType "Bundle" makes a bundle file; a line break
 * inside the object makes a JSON document (NDJSON keeps each object on one line), read as a bundle so a
 * single resource gets a clear problem; an object closed on its first line starts an NDJSON file.
 */
function firstObject(text: string): Kind {
  let depth = 0;
  let expectKey = false;
  let key = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end === -1) break;
      const value = text.slice(i + 1, end);
      if (depth === 1 && expectKey) key = value;
      else if (depth === 1 && key === "resourceType" && value === "Bundle") return "bundle";
      i = end;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = c === "{" && depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return "ndjson";
    } else if (c === "\n") {
      return "bundle";
    } else if (depth === 1 && (c === "," || c === ":")) {
      expectKey = c === ",";
    }
  }
  return "ndjson";
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}
