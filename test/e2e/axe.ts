import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";

const AXE_SOURCE = readFileSync(resolve("node_modules/axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core on the page as it is now and saves a screenshot of it under test-results/.
 * axe is evaluated through DevTools (page.evaluate), which the page's Content-Security-Policy does not
 * govern: a <script> tag (addScriptTag) would be refused by script-src 'self', and bypassCSP would test a
 * page without the policy it ships with. Returns "rule: targets" lines, one per violation of any impact.
 */
export async function audit(page: Page, screen: string): Promise<string[]> {
  mkdirSync(resolve("test-results"), { recursive: true });
  await page.screenshot({ path: resolve(`test-results/a11y-${screen}.png`), fullPage: true });
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(c: Document, o: object): Promise<unknown> } }).axe;
    const results = (await axe.run(document, { resultTypes: ["violations"] })) as {
      violations: AxeViolation[];
      passes: unknown[];
    };
    if (results.passes.length === 0) throw new Error("axe-core checked nothing on this page.");
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return violations.map(
    (v) =>
      `${screen}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
}
