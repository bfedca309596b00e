import { describe, expect, it } from "vitest";
import { erf, erfc, erfcx, logErfc, logNormalCdf, normalCdf } from "../../../src/core/privacy/normal";

/** |got - want| <= tol |want|. */
function expectRelative(got: number, want: number, tol = 4e-15): void {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(tol * Math.abs(want));
}

// Reference values: mpmath at 50 digits, rounded to the nearest double; the tolerance is a few ulps. (SciPy's ndtr gives
// 0.15865525393145707 for Φ(-1) and 7.619853024160527e-24 for Φ(-10), one or two ulps off these.)
const PHI: [number, number][] = [
  [0, 0.5],
  [-1e-8, 0.4999999960105772],
  [-0.5, 0.3085375387259869],
  [-1, 0.15865525393145705],
  [1.5, 0.9331927987311419],
  [3, 0.9986501019683699],
  [-5, 2.866515718791939e-7],
  [-10, 7.619853024160525e-24],
  [-12.345, 2.591712067896197e-35],
  [-20.17, 8.981936153095587e-91],
  [-30.7, 2.8458302208738193e-207],
  [-37.3, 8.205494844930773e-305], // exp(-x^2/2) from a rounded x^2 would be 3e-14 off here
];

const LOG_PHI: [number, number][] = [
  [0.5, -0.3689464152886564],
  [5, -2.866516129637636e-7],
  [-3, -6.607726221510349],
  [-40, -804.6084420137538], // Φ(-40) = 3.66e-350 is below the smallest double
];

describe("normalCdf", () => {
  it("matches high-precision values from the centre to the far lower tail", () => {
    for (const [x, want] of PHI) expectRelative(normalCdf(x), want);
  });

  it("is symmetric: Φ(x) + Φ(-x) = 1", () => {
    for (let x = 0; x < 9; x += 0.37) expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 15);
  });

  it("increases, and reaches 0 only where Φ underflows", () => {
    let previous = 0;
    for (let x = -38.4; x <= 9; x += 0.01) {
      const phi = normalCdf(x);
      expect(phi).toBeGreaterThanOrEqual(previous);
      expect(phi).toBeGreaterThan(0);
      previous = phi;
    }
    expect(normalCdf(-39)).toBe(0);
    expect(normalCdf(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(normalCdf(Number.POSITIVE_INFINITY)).toBe(1);
  });
});

describe("logNormalCdf", () => {
  it("matches high-precision values, including where Φ itself underflows", () => {
    for (const [x, want] of LOG_PHI) expectRelative(logNormalCdf(x), want);
  });

  it("equals log Φ wherever Φ is a normal double", () => {
    for (let x = -37; x < 3; x += 0.173) expectRelative(logNormalCdf(x), Math.log(normalCdf(x)), 2e-14);
  });

  it("follows the asymptote -x^2/2 - log(-x) - log(2 pi)/2 far out, and stays finite at -1e150", () => {
    // The next term, log(1 - 1/x^2), is below an ulp of these values.
    for (const x of [-1e5, -1e10, -1e150]) {
      const asymptote = -0.5 * x * x - Math.log(-x) - 0.5 * Math.log(2 * Math.PI);
      expectRelative(logNormalCdf(x), asymptote);
      expect(Number.isFinite(logNormalCdf(x))).toBe(true);
    }
  });

  it("decreases monotonically into the tail", () => {
    let previous = 0;
    for (let x = 8; x >= -200; x -= 0.05) {
      const value = logNormalCdf(x);
      expect(value).toBeLessThan(previous);
      previous = value;
    }
  });
});

describe("erf, erfc, erfcx and logErfc", () => {
  it("match high-precision values", () => {
    expectRelative(erf(1e-10), 1.1283791670955126e-10);
    expectRelative(erf(0.4), 0.42839235504666845);
    expectRelative(erf(-2), -0.9953222650189527);
    expectRelative(erfc(0.3), 0.6713732405408726);
    expectRelative(erfc(2), 0.004677734981047266);
    expectRelative(erfc(-1), 1.8427007929497148);
    expectRelative(erfc(10.3), 4.5947618530992265e-48);
    expectRelative(erfc(26.1), 3.081217493314593e-298);
    expectRelative(erfcx(0.2), 0.8090195199015807);
    expectRelative(erfcx(5), 0.11070463773306863);
    expectRelative(erfcx(100), 0.005641613782989433);
    expectRelative(erfcx(1e10), 5.641895835477563e-11);
    expectRelative(logErfc(0.3), -0.3984300514400853);
    expectRelative(logErfc(1), -1.8496055099332482);
    expectRelative(logErfc(-1), 0.6112323176780705);
    expectRelative(logErfc(30), -903.9741171106439); // erfc(30) underflows
  });

  it("agree with each other: logErfc(x) = log 2 + log Φ(-x sqrt 2)", () => {
    for (let x = -3; x < 40; x += 0.41) {
      expectRelative(logErfc(x), Math.LN2 + logNormalCdf(-x * Math.SQRT2), 1e-13);
    }
  });

  it("take the infinities to their limits", () => {
    expect(erf(Number.POSITIVE_INFINITY)).toBe(1);
    expect(erfc(Number.POSITIVE_INFINITY)).toBe(0);
    expect(erfc(1e308)).toBe(0);
    expect(normalCdf(-1e308)).toBe(0);
    expect(erfc(Number.NEGATIVE_INFINITY)).toBe(2);
    expect(erfcx(Number.POSITIVE_INFINITY)).toBe(0);
    expect(logErfc(Number.POSITIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(logNormalCdf(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(Math.abs(logNormalCdf(Number.POSITIVE_INFINITY))).toBe(0); // -0: log1p(-0)
  });

  it("pass NaN through", () => {
    for (const f of [erf, erfc, erfcx, logErfc, normalCdf, logNormalCdf]) expect(f(Number.NaN)).toBeNaN();
  });
});
