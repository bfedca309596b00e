import { z } from "zod";

/**
 * zod, configured once for every schema of the core. jitless: zod 4 otherwise probes `Function("")` to
 * decide whether it may compile parsers with eval, which the app's Content-Security-Policy (no
 * 'unsafe-eval') blocks and Chromium reports as a violation on every page and worker start.
 */
z.config({ jitless: true });

export { z };
