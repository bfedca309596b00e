/**
 * Writes the imaging demo's image folders, public/demo/digits/site{1,2,3}/{3,8}/*.png, from the UCI
 * optdigits 8×8 images in ../shared/data/tabular/digits.csv.gz (CC BY 4.0; see public/demo/ATTRIBUTION.md):
 * every image of a 3 or an 8, grey 0..16 scaled to 0..255, dealt round-robin to three sites.
 * Run once with `npx tsx test/support/make-digits-demo.ts`; the output is committed.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { encodePng } from "./png";

const SOURCE = "../shared/data/tabular/digits.csv.gz";
const OUT = "public/demo/digits";
const DIGITS = ["3", "8"];
const SITES = 3;

rmSync(OUT, { recursive: true, force: true });
const rows = gunzipSync(readFileSync(SOURCE)).toString("utf8").trim().split("\n");
const counts = new Map<string, number>();
rows.forEach((line, index) => {
  const values = line.split(",").map(Number);
  const digit = String(values[64]);
  if (!DIGITS.includes(digit)) return;
  const n = counts.get(digit) ?? 0;
  counts.set(digit, n + 1);
  const site = `site${(n % SITES) + 1}`;
  const pixels = Uint8Array.from(values.slice(0, 64), (v) => Math.round((v * 255) / 16));
  const dir = join(OUT, site, digit);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${String(index).padStart(4, "0")}.png`), encodePng(pixels, 8, 8, 1));
});
console.log(`wrote ${[...counts].map(([d, n]) => `${n} images of ${d}`).join(", ")} to ${OUT}`);
