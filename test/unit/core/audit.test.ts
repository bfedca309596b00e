import { describe, expect, it } from "vitest";
import {
  auditPValue,
  auditScores,
  epsilonLowerBound,
  logAuditPValue,
  logFactorial,
  scoreGuesses,
} from "../../../src/core/privacy/audit";

/** Accuracy of ε-randomized response, e^ε / (1 + e^ε). */
const rr = (epsilon: number) => 1 / (1 + Math.exp(-epsilon));
const bound = (m: number, r: number, v: number, delta: number, beta: number) =>
  epsilonLowerBound({ canaries: m, guesses: r, correct: v, delta, beta });

describe("the one-run audit's epsilon lower bound (Steinke, Nasr, Jagielski 2023)", () => {
  it("is 0 when the guesses are no better than chance, or too few to tell", () => {
    expect(bound(100, 100, 50, 0, 0.05)).toBe(0);
    expect(bound(100, 100, 40, 1e-5, 0.05)).toBe(0);
    expect(bound(100, 0, 0, 1e-5, 0.05)).toBe(0);
    // 4 right of 4 happens with probability 1/16 > 0.05 by coin flips alone.
    expect(bound(10, 4, 4, 0, 0.05)).toBe(0);
  });

  it("solves P[Binomial(r, e^ε/(1+e^ε)) >= v] = β when δ = 0 (hand-computed small r)", () => {
    // v = r: q^r = β, so q = β^(1/r) and ε = ln(q / (1 - q)).
    const q10 = 0.05 ** (1 / 10);
    expect(bound(10, 10, 10, 0, 0.05)).toBeCloseTo(Math.log(q10 / (1 - q10)), 8);
    // r = 5, v = 4: 5 q^4 (1 - q) + q^5 = β at the bound.
    const e54 = bound(10, 5, 4, 0, 0.2);
    const q54 = rr(e54);
    expect(5 * q54 ** 4 * (1 - q54) + q54 ** 5).toBeCloseTo(0.2, 8);
    // r = 8, v = 7 at β = 0.1: 8 q^7 (1 - q) + q^8 = β.
    const e87 = bound(10, 8, 7, 0, 0.1);
    const q87 = rr(e87);
    expect(e87).toBeGreaterThan(0);
    expect(8 * q87 ** 7 * (1 - q87) + q87 ** 8).toBeCloseTo(0.1, 8);
  });

  it("matches an independent scipy computation of the δ-aware p-value (their Appendix D)", () => {
    // python3, scipy.stats.binom, same theorem, bisection to 2^-60: 3.4791953949829115, 0.7317404494186919.
    expect(bound(500, 100, 100, 1e-5, 0.05)).toBeCloseTo(3.4791953949829115, 8);
    expect(bound(1000, 1000, 700, 1e-5, 0.05)).toBeCloseTo(0.7317404494186919, 8);
    expect(bound(200, 60, 45, 1e-5, 0.05)).toBeCloseTo(0.5808287923033431, 8);
    // δ only weakens what the guesses prove.
    expect(bound(1000, 1000, 700, 0, 0.05)).toBeCloseTo(0.7320108623573903, 8);
  });

  it("grows with the number of correct guesses and shrinks as the confidence rises", () => {
    const byV = Array.from({ length: 41 }, (_, i) => bound(100, 40, i, 1e-5, 0.05));
    for (let v = 1; v <= 40; v++) expect(byV[v]).toBeGreaterThanOrEqual(byV[v - 1] as number);
    expect(byV[40]).toBeGreaterThan(byV[35] as number);
    expect(byV[35]).toBeGreaterThan(byV[30] as number);
    expect(byV[30]).toBeGreaterThan(0);
    const byBeta = [0.001, 0.01, 0.05, 0.2].map((beta) => bound(100, 40, 34, 1e-5, beta));
    for (let i = 1; i < byBeta.length; i++) expect(byBeta[i]).toBeGreaterThan(byBeta[i - 1] as number);
  });

  it("stays exact in log space for r up to 1000 and beyond, down to tails below a double's range (mpmath, 50 digits)", () => {
    const cases: [number, number, number, number, number, number][] = [
      [1000, 1000, 700, 0.5, 1e-5, -8.585709818478913],
      [1000, 1000, 900, 1.5, 0, -28.82236282287048],
      [1000, 1000, 990, 1.0, 1e-5, -9.59341013771185],
      [1000, 1000, 990, 1.0, 0, -269.30595736857265],
      [1000, 1000, 1000, 2.0, 0, -126.9280110429725],
      [1000, 1000, 500, 0, 0, -0.6682350621326347],
      // All of r coin flips right: 2^-r exactly, 2^-2000 ~ 1e-602 (0 as a double).
      [2000, 2000, 2000, 0, 0, -2000 * Math.LN2],
    ];
    for (const [m, r, v, epsilon, delta, want] of cases) {
      const got = logAuditPValue({ canaries: m, guesses: r, correct: v, epsilon, delta });
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want));
    }
    expect(auditPValue({ canaries: 10, guesses: 10, correct: 10, epsilon: 0, delta: 0 })).toBeCloseTo(
      2 ** -10,
      15,
    );
  });

  it("computes ln n! to double precision on both sides of the Stirling switch", () => {
    let exact = 0;
    for (let n = 1; n <= 1000; n++) {
      exact += Math.log(n);
      expect(Math.abs(logFactorial(n) - exact)).toBeLessThanOrEqual(1e-12 * exact);
    }
    expect(logFactorial(0)).toBe(0);
  });

  it("refuses impossible counts and parameters with messages naming them", () => {
    const counts = { canaries: 10, guesses: 6, correct: 5, delta: 1e-5, beta: 0.05 };
    expect(() => epsilonLowerBound({ ...counts, correct: 7 })).toThrow(/correct must be .* 6 guesses, got 7/);
    expect(() => epsilonLowerBound({ ...counts, guesses: 11 })).toThrow(
      /guesses must be .* 10 canaries, got 11/,
    );
    expect(() => epsilonLowerBound({ ...counts, canaries: 0 })).toThrow(/canaries must be a whole number/);
    expect(() => epsilonLowerBound({ ...counts, correct: 2.5 })).toThrow(/correct must be a whole number/);
    expect(() => epsilonLowerBound({ ...counts, beta: 0 })).toThrow(/beta must lie strictly between 0 and 1/);
    expect(() => epsilonLowerBound({ ...counts, beta: 1 })).toThrow(/beta/);
    expect(() => epsilonLowerBound({ ...counts, delta: -1e-5 })).toThrow(/delta must be at least 0/);
    expect(() => epsilonLowerBound({ ...counts, delta: 1 })).toThrow(/delta/);
    expect(() => logAuditPValue({ ...counts, epsilon: -1 })).toThrow(/epsilon must be a finite number >= 0/);
    expect(() => logAuditPValue({ ...counts, epsilon: Number.NaN })).toThrow(/epsilon/);
  });
});

describe("the auditor's guesses", () => {
  it("guesses in for the highest scores and out for the lowest, ties by canary index", () => {
    // Prepare: canaries 0..5 by falling score; 0, 1, 3 were included.
    const scores = [5, 4, 3, 2, 1, 0];
    const included = [true, true, false, true, false, false];

    // Execute / Assert: in = {0, 1} (both right), out = {4, 5} (both right).
    expect(scoreGuesses(scores, included, 2, 2)).toEqual({ canaries: 6, guesses: 4, correct: 4 });
    // in = {0, 1, 2}: 2 right; out = {3, 4, 5}: 2 right.
    expect(scoreGuesses(scores, included, 3, 3)).toEqual({ canaries: 6, guesses: 6, correct: 4 });
    // Equal scores: the lower index counts as more confident, so in = {0} (included), out = {2}.
    expect(scoreGuesses([1, 1, 1], [true, false, false], 1, 1)).toEqual({
      canaries: 3,
      guesses: 2,
      correct: 2,
    });
  });

  it("refuses mismatched or impossible inputs", () => {
    expect(() => scoreGuesses([1, 2], [true], 1, 0)).toThrow(/one entry per canary, got 2 and 1/);
    expect(() => scoreGuesses([1, 2], [true, false], 2, 1)).toThrow(/3 guesses exceed the 2 canaries/);
    expect(() => scoreGuesses([1, Number.NaN], [true, false], 1, 0)).toThrow(/scores\[1\] is NaN/);
    expect(() => scoreGuesses([], [], 0, 0)).toThrow(/no canaries/);
    expect(() => scoreGuesses([1], [true], -1, 0)).toThrow(/kPlus must be a whole number/);
  });

  it("takes the best of a fixed grid of guess counts, each at β / grid size (Bonferroni)", () => {
    // Prepare: 100 canaries, the 30 highest scores all included, the 30 lowest all excluded, the middle mixed.
    const m = 100;
    const scores = Array.from({ length: m }, (_, i) => m - i);
    const included = scores.map((_, i) => i < 30 || (i < 70 && i % 2 === 0));
    const choices = [
      [10, 10],
      [30, 30],
      [45, 45],
    ] as const;

    // Execute
    const result = auditScores(scores, included, { delta: 1e-5, beta: 0.05, choices });

    // Assert: 60 of 60 right at k = 30 beats 20 of 20 and 70 of 90.
    expect(result).toMatchObject({ kPlus: 30, kMinus: 30, guesses: 60, correct: 60 });
    expect(result.epsilonLowerBound).toBe(bound(m, 60, 60, 1e-5, 0.05 / 3));
    expect(result.epsilonLowerBound).toBeLessThan(bound(m, 60, 60, 1e-5, 0.05));
    expect(() => auditScores(scores, included, { delta: 0, beta: 0.05, choices: [] })).toThrow(
      /at least one/,
    );
  });
});
