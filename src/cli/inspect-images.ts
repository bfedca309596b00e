import { openAsBlob, readFileSync } from "node:fs";
import { basename, relative } from "node:path";
import { type ImageSource, importImages } from "../../workers/import/image-import";
import {
  folderOf,
  type ImageLabels,
  labelValue,
  pathKeys,
  readImageLabels,
} from "../../workers/import/image-labels";
import { rasterKind } from "../../workers/import/raster";
import type { Plan } from "../core/plan";

/**
 * `fedward inspect` for an image plan: DICOM folders go through the site's own image import in Node
 * (parsing, every codec, the pixel pipeline, labels); PNG and JPEG files are decoded by the browser's own
 * decoders at the site, which Node lacks, so here they are only told apart by their bytes and matched to
 * their labels. Reports name files by their path as given (the engineer's own disk), never a key's value.
 */
export interface ImagesReport {
  examples: number;
  positives: number;
  skipped: number;
  errors: number;
  text: string;
}

const SHOWN = 20;

export async function inspectImages(
  roots: { root: string; files: string[] }[],
  plan: Plan,
  labelsPath: string | undefined,
): Promise<ImagesReport> {
  const spec = plan.image as NonNullable<Plan["image"]>;
  const all = roots.flatMap(({ root, files }) =>
    files.map((file) => ({ file, path: relative(root, file) || basename(file) })),
  );
  const csvs = all.filter((f) => /\.(csv|tsv)$/i.test(f.file));
  const labelsFile =
    labelsPath ?? (spec.labels.key !== "folder" && csvs.length === 1 ? csvs[0]?.file : undefined);
  let labels: ImageLabels | undefined;
  if (labelsFile) {
    const blob = Object.assign(await openAsBlob(labelsFile), { name: labelsFile });
    labels = await readImageLabels(blob, plan);
  }
  const images = all.filter((f) => f.file !== labelsFile);
  const lines: string[] = [];
  if (labelsFile)
    lines.push(
      `${labelsFile}: labels CSV, ${labels?.size ?? 0} keys, ${labels?.problems.length ?? 0} problems`,
    );
  for (const p of (labels?.problems ?? []).slice(0, SHOWN)) lines.push(`  line ${p.line}: ${p.message}`);
  let positives = 0;
  let examples = 0;
  let skipped = 0;
  if (spec.source === "dicom") {
    const sources: ImageSource[] = await Promise.all(
      images.map(async ({ file, path }) => ({ file: await openAsBlob(file), path, label: file })),
    );
    const result = await importImages(sources, labels, plan, {
      add(_x, y) {
        examples++;
        positives += y;
      },
      problem(p) {
        if (p.column === "labels CSV") return; // listed above
        lines.push(`${p.column}: ${p.message}`);
      },
    });
    skipped = result.rowsSkipped;
  } else {
    for (const { file, path } of images) {
      const kind = rasterKind(new Uint8Array(readFileSync(file).subarray(0, 8)));
      if (!kind) {
        skipped++;
        lines.push(`${file}: not a PNG or JPEG image (told by its first bytes); not read`);
        continue;
      }
      const y =
        spec.labels.key === "folder"
          ? labelValue(plan, folderOf(path))
          : pathKeys(path)
              .map((k) => labels?.get(k))
              .find((v) => v !== undefined);
      if (y === undefined) {
        skipped++;
        lines.push(
          `${file}: no label (${spec.labels.key === "folder" ? "folder name" : "labels CSV"}); left out`,
        );
        continue;
      }
      examples++;
      positives += y;
    }
    lines.push(
      `note: PNG and JPEG pixels are decoded by the browser at the site; here files were only matched to labels`,
    );
  }
  return { examples, positives, skipped, errors: 0, text: lines.map((l) => `${l}\n`).join("") };
}
