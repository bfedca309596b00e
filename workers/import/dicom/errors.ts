import { ImportError } from "../parser";

/** What is wrong with a DICOM file, for code that reacts to it (the message is for people). */
export type DicomProblem =
  | "not-dicom"
  | "unknown-encoding"
  | "truncated"
  | "malformed"
  | "missing-attribute"
  | "bad-attribute"
  | "unsupported"
  | "unsupported-transfer-syntax"
  | "bad-pixel-data"
  | "decode-failed"
  | "no-such-frame";

/**
 * A DICOM file that cannot be read: "your file", not our bug. It keeps the name ImportError so the page
 * (INPUT_ERROR_NAMES) shows it as a file problem after it crosses the worker boundary; the file name,
 * the byte offset where known and the problem code are fields as well as parts of the message.
 */
export class DicomError extends ImportError {
  readonly fileName: string;
  readonly problem: DicomProblem;
  readonly offset: number | undefined;

  constructor(fileName: string, problem: DicomProblem, detail: string, offset?: number) {
    super(`${fileName}: ${detail}${offset === undefined ? "" : ` (at byte ${offset})`}`);
    this.fileName = fileName;
    this.problem = problem;
    this.offset = offset;
  }
}

/** dicom-parser throws strings, Errors and { exception, dataSet }; this gets the words out of any of them. */
export function describeThrown(thrown: unknown): string {
  if (typeof thrown === "string") return thrown;
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === "object" && thrown !== null && "exception" in thrown) {
    return describeThrown((thrown as { exception: unknown }).exception);
  }
  return String(thrown);
}
