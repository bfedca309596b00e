import type { DataSet } from "dicom-parser";
import { DicomError } from "./errors";

/** Reading attribute values defensively: real files hold empty, padded and malformed values. */

/** A string value (first of several), trimmed of padding; undefined when absent or empty. */
export function text(dataSet: DataSet, tag: string): string | undefined {
  const element = dataSet.elements[tag];
  if (element === undefined || element.length === 0) return undefined;
  const value = dataSet.string(tag)?.replace(/\0/g, "").trim();
  return value === "" ? undefined : value;
}

/** A US value; undefined when absent or empty, DicomError when it is not 2 bytes long. */
export function uint16(dataSet: DataSet, tag: string, name: string, fileName: string): number | undefined {
  const element = dataSet.elements[tag];
  if (element === undefined || element.length === 0) return undefined;
  if (element.length < 2) {
    throw new DicomError(
      fileName,
      "bad-attribute",
      `${name} ${tagName(tag)} is ${element.length} byte(s) long, not 2`,
    );
  }
  return dataSet.uint16(tag);
}

/** An IS value (Integer String, PS3.5 6.2); DicomError when it does not read as an integer. */
export function integerString(
  dataSet: DataSet,
  tag: string,
  name: string,
  fileName: string,
): number | undefined {
  const raw = text(dataSet, tag);
  if (raw === undefined) return undefined;
  const first = raw.split("\\")[0]?.trim() ?? "";
  if (!/^[+-]?\d{1,12}$/.test(first)) {
    throw new DicomError(
      fileName,
      "bad-attribute",
      `${name} ${tagName(tag)} is "${printable(raw)}", not an integer`,
    );
  }
  return Number.parseInt(first, 10);
}

/** A DS value (Decimal String): its first value; DicomError when it does not read as a number. */
export function decimalString(
  dataSet: DataSet,
  tag: string,
  name: string,
  fileName: string,
): number | undefined {
  const raw = text(dataSet, tag);
  if (raw === undefined) return undefined;
  const first = raw.split("\\")[0]?.trim() ?? "";
  const value = Number(first);
  if (first === "" || !Number.isFinite(value)) {
    throw new DicomError(
      fileName,
      "bad-attribute",
      `${name} ${tagName(tag)} is "${printable(raw)}", not a number`,
    );
  }
  return value;
}

/** "(GGGG,EEEE)" from dicom-parser's "xggggeeee". */
export function tagName(tag: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()})`;
}

function printable(s: string): string {
  const cut = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  return cut.replace(/[^\x20-\x7e…]/g, "?");
}
