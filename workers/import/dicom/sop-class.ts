/**
 * Which objects are not images to train on. Skipped, with a plain reason, rather than reported as errors:
 * a DICOM export holds them next to the images as a matter of course.
 */

export const MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10";

/** SOP Class UID prefixes (PS3.4 B.5 / PS3.6 Annex A) of objects that are not images, and what they are. */
const NOT_IMAGES: [prefix: string, what: string][] = [
  [MEDIA_STORAGE_DIRECTORY, "a DICOMDIR (Media Storage Directory, an index of the other files)"],
  ["1.2.840.10008.5.1.4.1.1.88.", "a Structured Report"],
  ["1.2.840.10008.5.1.4.1.1.9.", "a waveform (ECG, haemodynamic or audio)"],
  ["1.2.840.10008.5.1.4.1.1.11.", "a Presentation State"],
  ["1.2.840.10008.5.1.4.1.1.104.", "an encapsulated document (PDF, CDA, STL or OBJ)"],
  ["1.2.840.10008.5.1.4.1.1.66.4", "a Segmentation (a label mask drawn on images)"],
  ["1.2.840.10008.5.1.4.1.1.66", "raw data, a registration or a fiducial set"],
  ["1.2.840.10008.5.1.4.1.1.67", "a Real World Value Mapping"],
  ["1.2.840.10008.5.1.4.1.1.68.", "a surface model"],
  ["1.2.840.10008.5.1.4.1.1.481.2", "an RT Dose (a computed dose grid)"],
  ["1.2.840.10008.5.1.4.1.1.481.3", "an RT Structure Set (contours)"],
  ["1.2.840.10008.5.1.4.1.1.481.5", "an RT Plan"],
  ["1.2.840.10008.5.1.4.1.1.481.8", "an RT Ion Plan"],
  ["1.2.840.10008.5.1.4.1.1.481.", "an RT object (plan, record or summary)"],
  ["1.2.840.10008.5.1.4.34.", "an RT second-generation object"],
  ["1.2.840.10008.5.1.4.1.1.200.", "a protocol or procedure description"],
];

/** RT Image Storage: a radiotherapy portal or simulator image, a true image despite its RT family. */
const RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1";

/** Why an object of this SOP class is not an image; undefined for image (or unknown) classes. */
export function notAnImage(sopClassUid: string | undefined): string | undefined {
  if (sopClassUid === undefined || sopClassUid === RT_IMAGE) return undefined;
  for (const [prefix, what] of NOT_IMAGES) {
    if (
      prefix.endsWith(".")
        ? sopClassUid.startsWith(prefix)
        : sopClassUid === prefix || sopClassUid.startsWith(`${prefix}.`)
    ) {
      return `it is ${what}, not an image (SOP Class ${sopClassUid})`;
    }
  }
  return undefined;
}
