/**
 * Speed of the DICOM pixel pipeline: a 512×512 16-bit CT slice (explicit VR little endian, synthesized in
 * memory by upsampling pydicom's 128×128 CT_small.dcm 4× bilinearly, or a drawn phantom when
 * ../shared/data is absent) read with readDicom, rescaled to HU, windowed at 40/400 and resized to 64×64.
 * Medians of 7 runs of 100 slices after a warm-up. Run with `npx tsx test/bench/dicom.ts`.
 *
 * With `--browser` it also runs the same benchDicomSlices in a module Web Worker in Debian's Chromium (the
 * issue asks ≥ 50 slices/s there), from a Vite build of workers/import/dicom, and decodes one file per
 * compressed syntax there with the codecs' .wasm served by the page's own origin.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { benchDicomSlices, type DicomBenchResult } from "../../workers/import/dicom/bench";
import { median } from "./timing";

const PYDICOM = fileURLToPath(new URL("../../../shared/data/dicom/pydicom/", import.meta.url));
const CT_SMALL = join(PYDICOM, "CT_small.dcm");
const RUNS = 7;
const SLICES = 100;

const source = existsSync(CT_SMALL) ? new Uint8Array(readFileSync(CT_SMALL)) : undefined;
const what = source ? "CT_small.dcm upsampled to 512×512" : "a 512×512 phantom (../shared/data absent)";

function report(where: string, results: DicomBenchResult[]): void {
  const perSecond = median(results.map((r) => r.slicesPerSecond));
  const readMs = median(results.map((r) => r.readMs / r.slices));
  const modelMs = median(results.map((r) => r.modelInputMs / r.slices));
  console.log(
    `bench dicom 512×512 CT → 64×64 ${where} (${what}): median ${perSecond.toFixed(0)} slices/s; ` +
      `per slice ${readMs.toFixed(2)} ms read+decode, ${modelMs.toFixed(2)} ms rescale+window+resize`,
  );
}

await benchDicomSlices(10, source); // warm-up
const results: DicomBenchResult[] = [];
for (let run = 0; run < RUNS; run++) results.push(await benchDicomSlices(SLICES, source));
report("in Node", results);

if (process.argv.includes("--browser")) await inChromium();

async function inChromium(): Promise<void> {
  const { launchSite } = await import("../e2e/browser");
  const out = mkdtempSync(join(tmpdir(), "fedward-bench-dicom-"));
  const site = await launchSite();
  try {
    await build({
      configFile: false,
      logLevel: "silent",
      build: {
        outDir: out,
        minify: true,
        target: "es2022",
        lib: {
          entry: {
            bench: resolve("workers/import/dicom/bench.ts"),
            read: resolve("workers/import/dicom/read.ts"),
            codecs: resolve("workers/import/dicom/codecs.ts"),
            urls: resolve("workers/import/dicom/wasm-urls.ts"),
          },
          formats: ["es"],
        },
      },
    });
    const origin = "http://localhost:5997";
    const types: Record<string, string> = { ".js": "text/javascript", ".wasm": "application/wasm" };
    const page = await site.context.newPage();
    await page.route(`${origin}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      const file = join(out, path);
      if (path === "/" || !existsSync(file)) {
        return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>dicom bench</title>" });
      }
      return route.fulfill({
        contentType: types[extname(file)] ?? "application/octet-stream",
        body: readFileSync(file),
      });
    });
    await page.goto(`${origin}/`);
    const samples = [
      "MR_small_RLE.dcm",
      "MR_small_jp2klossless.dcm",
      "MR_small_jpeg_ls_lossless.dcm",
      "JPGExtended.dcm",
      "SC_rgb_dcmtk_+eb+cy+n2.dcm",
      "SC_rgb_jpeg_gdcm.dcm",
      "image_dfl.dcm",
    ].filter((name) => existsSync(join(PYDICOM, name)));
    const files = samples.map((name) => ({ name, bytes: Array.from(readFileSync(join(PYDICOM, name))) }));
    const outcome = (await page.evaluate(
      ({ origin, files, source, runs, slices }) => {
        const code = `
          import { benchDicomSlices } from "${origin}/bench.js";
          import { readDicom } from "${origin}/read.js";
          import { configureDicomCodecs } from "${origin}/codecs.js";
          import { dicomWasmUrls } from "${origin}/urls.js";
          onmessage = async ({ data }) => {
            configureDicomCodecs({ wasm: dicomWasmUrls });
            const decoded = [];
            for (const f of data.files) {
              try {
                const r = await readDicom(new Uint8Array(f.bytes), { fileName: f.name });
                decoded.push(f.name + ": " + (r.kind === "image" ? r.rows + "×" + r.columns + " " + r.transferSyntax : r.reason));
              } catch (e) { decoded.push(f.name + ": FAILED " + e.message); }
            }
            const src = data.source ? new Uint8Array(data.source) : undefined;
            await benchDicomSlices(10, src);
            const results = [];
            for (let i = 0; i < data.runs; i++) results.push(await benchDicomSlices(data.slices, src));
            postMessage({ decoded, results });
          };`;
        return new Promise((done, fail) => {
          const worker = new Worker(URL.createObjectURL(new Blob([code], { type: "text/javascript" })), {
            type: "module",
          });
          worker.onmessage = (e) => {
            worker.terminate();
            done(e.data);
          };
          worker.onerror = (e) => fail(new Error(e.message));
          worker.postMessage({ files, source, runs, slices });
        });
      },
      { origin, files, source: source ? Array.from(source) : undefined, runs: RUNS, slices: SLICES },
    )) as { decoded: string[]; results: DicomBenchResult[] };
    for (const line of outcome.decoded) console.log(`  in a Chromium worker: ${line}`);
    report("in a Chromium worker", outcome.results);
  } finally {
    await site.close();
    rmSync(out, { recursive: true, force: true });
  }
}
