import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { defineConfig, type Plugin } from "vite";

const SW_FILE = "sw.js";
const SW_PLACEHOLDER = /(["'`])__FEDWARD_SW_MANIFEST__\1/;

/** Files of the build the service worker keeps: the page, every emitted asset, the demo's plans and CSVs. */
function isShellFile(path: string): boolean {
  if (path === SW_FILE) return false;
  if (path === "index.html" || path.startsWith("assets/")) return true;
  // demo/digits/ holds image folders to hand to sites, not files the app reads.
  return /^demo\/[^/]+\.(json|csv)$/.test(path);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join("/"));
}

/**
 * Writes the list of the build's files, and a version hashed from their bytes, into sw.js once every file
 * is on disk (worker bundles and their .wasm included, which other plugins emit late). A new build thus
 * changes sw.js, which is how the browser learns of it; no plugin fetches anything.
 */
function swManifest(): Plugin {
  return {
    name: "fedward-sw-manifest",
    apply: "build",
    writeBundle: {
      sequential: true,
      order: "post",
      handler(options) {
        const dir = options.dir as string;
        const files = filesUnder(dir).filter(isShellFile).sort();
        const hash = createHash("sha256");
        for (const f of files)
          hash
            .update(f)
            .update("\0")
            .update(readFileSync(join(dir, f)));
        const manifest = { version: hash.digest("hex").slice(0, 16), files };
        const swPath = join(dir, SW_FILE);
        const source = readFileSync(swPath, "utf8");
        if (!SW_PLACEHOLDER.test(source)) throw new Error(`${swPath} has no manifest placeholder to fill.`);
        writeFileSync(
          swPath,
          source.replace(SW_PLACEHOLDER, () => JSON.stringify(JSON.stringify(manifest))),
        );
      },
    },
  };
}

export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      // The service worker is its own entry at the root: its scope is the folder it is served from.
      input: { index: resolve("index.html"), sw: resolve("workers/sw.ts") },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? SW_FILE : "assets/[name]-[hash].js"),
      },
    },
  },
  plugins: [swManifest()],
  worker: { format: "es" },
  server: { port: 5173 },
});
