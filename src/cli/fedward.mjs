#!/usr/bin/env node
// `fedward` as an npm bin: the CLI is TypeScript, so load it through tsx (a dependency) rather than a build.
// Import the CLI elsewhere as "./fedward.js" or "./fedward.ts": an extensionless "./fedward" resolves to this
// file first under Vite/Vitest and would run main().
import { tsImport } from "tsx/esm/api";

const { main } = await tsImport("./fedward.ts", import.meta.url);
await main(process.argv.slice(2));
