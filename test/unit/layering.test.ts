import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The import direction of ../shared/STYLE.md, checked over every source file: core imports only core;
 * workers import core and store; client and app take only *types* from workers; server imports core.
 */
const root = resolve(".");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

interface Import {
  from: string;
  target: string;
  typeOnly: boolean;
}

function imports(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const found: Import[] = [];
  for (const m of text.matchAll(/^\s*(import|export)(\s+type)?[^"';]*?from\s+["']([^"']+)["']/gm)) {
    const spec = m[3] as string;
    if (!spec.startsWith(".")) continue;
    found.push({
      from: relative(root, file),
      target: relative(root, resolve(file, "..", spec)),
      typeOnly: m[2] !== undefined,
    });
  }
  return found;
}

const place = (path: string) =>
  path.startsWith("src/") ? path.split("/").slice(0, 2).join("/") : (path.split("/")[0] as string);

const allowed: Record<string, string[]> = {
  "src/core": ["src/core"],
  "src/store": ["src/core", "src/store"],
  workers: ["src/core", "src/store", "workers"],
  "src/client": ["src/core", "src/store", "src/client"],
  "src/app": ["src/core", "src/store", "src/client", "src/app"],
  "src/server": ["src/core", "src/server"],
  "src/cli": ["src/core", "src/store", "workers", "src/cli"],
};

describe("layering", () => {
  const all = ["src", "workers"].flatMap((d) => files(join(root, d))).flatMap(imports);

  it("finds the imports it checks", () => {
    expect(all.length).toBeGreaterThan(50);
  });

  it("keeps every import inside its place's allowed places (types from workers excepted on the page)", () => {
    const bad = all.filter(({ from, target, typeOnly }) => {
      const here = place(from);
      const there = place(target);
      if ((allowed[here] ?? []).includes(there)) return false;
      return !(typeOnly && there === "workers" && (here === "src/client" || here === "src/app"));
    });
    expect(bad).toEqual([]);
  });
});
