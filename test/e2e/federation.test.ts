import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlan } from "../../src/core/plan";
import { planPrivacy } from "../../src/core/privacy/budget";
import { launchSite, type Site } from "./browser";
import { freshCoordinator } from "./coordinator";
import { downloadFinalModel, enrollAndImport, ledgerOnPage, pooled, trainUntilDone } from "./site-page";

/**
 * The whole product, for real: the coordinator (Fastify + PGlite) on a loopback port, two Chromium
 * browsers with their own profiles as two hospitals, the real file input, the import and training workers,
 * WebGPU forced in the training worker (SwiftShader here, so the model and data are tiny).
 */
describe("federation end to end", () => {
  let coordinator: Awaited<ReturnType<typeof freshCoordinator>>;
  const sites: Site[] = [];

  beforeAll(async () => {
    coordinator = await freshCoordinator();
  });
  afterAll(async () => {
    await Promise.all(sites.map((s) => s.close()));
    await coordinator?.dispose();
  });

  it("trains the demo plan by DP-SGD over 3 rounds on webgpu in two browsers, at epsilon <= 3 per row", async () => {
    // Prepare
    const plan = parsePlan(JSON.parse(readFileSync("public/demo/wdbc-plan.json", "utf8")));
    // The plan fixes the sampling rate, so every site's epsilon is the same whatever its size.
    const perRound = planPrivacy(plan, 100).epsilonPerRound;
    const federationId = coordinator.invites[0]?.federationId as string;
    const files = ["public/demo/wdbc-site1.csv", "public/demo/wdbc-site2.csv"];
    for (let i = 0; i < 2; i++) sites.push(await launchSite());
    const pages = await Promise.all(sites.map((s) => s.context.newPage()));
    const holdouts = await Promise.all(
      pages.map((p, i) =>
        enrollAndImport(p, `${coordinator.invites[i]?.url}&backend=webgpu`, resolve(files[i] as string)),
      ),
    );

    // Execute
    const results = await Promise.all(pages.map((p, i) => trainUntilDone(p, holdouts[i] as number, 480_000)));

    // Assert
    const before = pooled(results, "accuracyBefore");
    const after = pooled(results, "accuracyAfter");
    const epsilon = perRound[2] as number;
    console.log(
      `e2e dp-sgd: sites=2 epsilon=${epsilon.toFixed(4)} delta=${plan.privacy.delta.toExponential().replace("e-", "e-0")} ` +
        `accuracy_before=${before.toFixed(4)} accuracy_after=${after.toFixed(4)} backend=${results[0]?.backend}`,
    );
    expect(epsilon).toBeLessThanOrEqual(3);
    for (const r of results) expect(r.backend).toBe("webgpu");
    // Each site's ledger shows its 3 releases, the very bytes it uploaded, and the epsilon they spent.
    for (const page of pages) {
      const ledger = await ledgerOnPage(page);
      expect(ledger.rows.map((r) => r.round)).toEqual([1, 2, 3]);
      expect(ledger.rows.map((r) => r.sha256)).toEqual(ledger.uploadShas);
      expect(ledger.rows.every((r) => r.outcome === "accepted")).toBe(true);
      // The ledger's epsilon is the plan's, round by round (RDP of the sampled Gaussian, integer orders).
      // Chromium's Math.log and Math.exp may differ from Node's in the last bit: equal to 12 digits.
      ledger.rows.forEach((r, i) => {
        expect(r.epsilonAfter).toBeCloseTo(perRound[i] as number, 12);
      });
      expect(ledger.spent).toBe(ledger.rows[2]?.epsilonAfter);
      const rows = page.locator("[data-testid=ledger] tbody tr");
      for (let i = 0; i < 3; i++) {
        const row = rows.nth(i);
        expect(await row.getAttribute("data-mechanism")).toBe("dp-sgd");
        expect(Number(await row.getAttribute("data-sigma"))).toBe(
          plan.privacy.noiseMultiplier * plan.privacy.clipNorm,
        );
        expect(Number(await row.getAttribute("data-steps"))).toBe(plan.privacy.stepsPerRound);
        expect(Number(await row.getAttribute("data-sampling-rate"))).toBe(plan.privacy.samplingRate);
      }
      expect(ledger.stored).toEqual(ledger.rows.map((r) => ({ round: r.round, sha256: r.sha256 })));
    }
    expect(after).toBeGreaterThanOrEqual(0.9);
    expect(after).toBeGreaterThan(before);
    // The final model downloads from the page in TF.js format and holds the coordinator's last weights.
    const [jsonFile, binFile] = await downloadFinalModel(pages[0] as Page);
    const manifest = JSON.parse(readFileSync(jsonFile, "utf8")) as { weightsManifest: { paths: string[] }[] };
    expect(manifest.weightsManifest[0]?.paths).toEqual(["weights.bin"]);
    const final = (await coordinator.storage.getModel(federationId, 3)) as Float32Array;
    expect(readFileSync(binFile).equals(Buffer.from(final.buffer))).toBe(true);
    const versions = await coordinator.storage.getModelVersions(federationId);
    expect(versions).toEqual([0, 1, 2, 3]);
    for (let v = 1; v <= 3; v++) {
      const prev = (await coordinator.storage.getModel(federationId, v - 1)) as Float32Array;
      const next = (await coordinator.storage.getModel(federationId, v)) as Float32Array;
      expect(
        Buffer.from(next.buffer).equals(Buffer.from(prev.buffer)),
        `model ${v} equals model ${v - 1}`,
      ).toBe(false);
    }
  });
});
