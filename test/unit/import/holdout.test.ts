import { describe, expect, it } from "vitest";
import { isHoldout } from "../../../workers/import/holdout";

describe("isHoldout", () => {
  it.each([0.2, 0.35])("holds out %s of 100000 consecutive lines, the same ones every time", (fraction) => {
    // Prepare
    const lines = Array.from({ length: 100_000 }, (_, i) => i + 2);

    // Execute
    const first = lines.filter((line) => isHoldout(line, fraction));
    const again = lines.filter((line) => isHoldout(line, fraction));

    // Assert: within about 4 standard deviations (0.0013 at 0.2) of the fraction
    expect(Math.abs(first.length / lines.length - fraction)).toBeLessThan(0.006);
    expect(again).toEqual(first);
  });

  it("does not hold out runs of neighbouring lines", () => {
    // Prepare
    const lines = Array.from({ length: 10_000 }, (_, i) => i + 2);

    // Execute
    const held = lines.map((line) => isHoldout(line, 0.2));
    const bothHeld = held.filter((h, i) => h && held[i + 1]).length;

    // Assert: independent lines give 0.2 * 0.2 of pairs; a sequential pattern would give ~0.2 or ~0
    expect(bothHeld / lines.length).toBeGreaterThan(0.03);
    expect(bothHeld / lines.length).toBeLessThan(0.05);
  });
});
