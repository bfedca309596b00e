import { describe, expect, it } from "vitest";
import {
  DEFAULT_RDP_ORDERS,
  exactGaussianEpsilon,
  gaussianMu,
  gdpDelta,
  gdpEpsilon,
  INTEGER_RDP_ORDERS,
  noiseMultiplierForEpsilon,
  rdpEpsilon,
  rdpPoissonGaussian,
  rdpToEpsilon,
} from "../../../src/core/privacy/accounting";

/** |got - want| <= atol + rtol |want|, numpy's allclose; Infinity only equals Infinity. */
function expectClose(got: number, want: number, rtol = 1e-4, atol = 0): void {
  if (!Number.isFinite(want)) {
    expect(got).toBe(want);
    return;
  }
  expect(Math.abs(got - want)).toBeLessThanOrEqual(atol + rtol * Math.abs(want));
}

/** Opacus's RDPAccountant orders: 1 + x/10 for x = 1..99, then 12..63. */
const OPACUS_ORDERS = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
];

describe("Gaussian DP", () => {
  it("composes noise multipliers into mu = sqrt(sum 1/z^2)", () => {
    expect(gaussianMu([3, 4])).toBeCloseTo(Math.sqrt(1 / 9 + 1 / 16), 15);
    expect(gaussianMu([])).toBe(0);
    // The compensated sum keeps T equal releases at sqrt(T)/z.
    expectClose(gaussianMu(new Array<number>(1_000_000).fill(3)), 1000 / 3, 1e-14);
  });

  it("gives delta(eps) of Balle & Wang's Theorem 8 (mpmath at 60 digits)", () => {
    const cases: [number, number, number][] = [
      [1, 0, 0.3829249225480262],
      [1, 1, 0.12693673750664394],
      [0.5, 0.1, 0.15926050741399167],
      [3, 2, 0.6858741657160493],
      [2, 30, 9.66210668297518e-46],
      [0.3, 10, 8.375062845942414e-244], // both Φ terms are below 1e-200 here
    ];
    for (const [mu, eps, want] of cases) expectClose(gdpDelta(mu, eps), want, 1e-12);
    expect(gdpDelta(0, 1)).toBe(0);
  });

  it("inverts delta(eps) to ~1e-12 (mpmath root)", () => {
    const cases: [number, number, number][] = [
      [1, 1e-5, 4.3771780956812245],
      [0.5, 1e-6, 2.254084650219741],
      [2, 1e-5, 9.9972561464343],
      [3, 1e-10, 23.048728462006142],
      [0.1, 1e-300, 3.6937216583195966],
    ];
    for (const [mu, delta, want] of cases) expectClose(gdpEpsilon(mu, delta), want, 1e-12);
  });

  it("gives epsilon 0 when delta is already met at eps = 0, and for no releases", () => {
    expect(gdpEpsilon(0, 1e-5)).toBe(0);
    expect(gdpEpsilon(0.1, 0.5)).toBe(0); // delta(0) = 2 Φ(0.05) - 1 = 0.04
    expect(exactGaussianEpsilon([], 1e-5)).toBe(0);
  });

  it("is the same for (z = 1, T = 1) and (z = 10, T = 100): 4.37718 at delta = 1e-5", () => {
    const one = exactGaussianEpsilon([1], 1e-5);
    const hundred = exactGaussianEpsilon(new Array<number>(100).fill(10), 1e-5);
    expectClose(one, 4.37718);
    expectClose(hundred, one, 1e-12);
  });
});

describe("RDP of the Poisson-subsampled Gaussian", () => {
  it("reproduces dp_accounting's test_compute_rdp_poisson_sampled_gaussian", () => {
    const rdp = rdpPoissonGaussian(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Number.POSITIVE_INFINITY]);
    const want = [
      6.70579741e-4,
      1.0854871e-3,
      2.18075656e-3,
      2.38460375e-2,
      1.67416308e2,
      Number.POSITIVE_INFINITY,
    ];
    for (const [k, r] of rdp.entries()) expectClose(r, want[k] as number);
  });

  it("stays above the exact value at fractional orders (|binomial| terms, as dp_accounting)", () => {
    // 50 log A_1.5 / 0.5 by mpmath quadrature of the integral itself; TF Privacy and Opacus, which keep the
    // signs, give this value; dp_accounting (and this code) give the 3% larger 6.7058e-4.
    const exact = 6.500708971867387e-4;
    const [rdp] = rdpPoissonGaussian(0.01, 2.5, 50, [1.5]);
    expect(rdp).toBeGreaterThan(exact);
    expect(rdp).toBeLessThan(exact * 1.04);
  });

  it("matches log A_alpha by numerical integration (dp_accounting's test_compute_log_a_equals_mp)", () => {
    // [q, sigma, order, log A by mpmath quadrature]; log A = (order - 1) RDP of one step.
    const cases: [number, number, number, number][] = [
      [1e-7, 0.1, 1.01, 4.003412322526399e-8],
      [1e-6, 0.1, 256, 3260463.2292971606],
      [1e-5, 0.1, 256.1, 3263607.0397884212],
      [1e-6, 1, 27, 8.769511304848498e-10],
      [1e-4, 1, 1.5, 6.4426869538366495e-9],
      [1e-3, 1, 2, 1.7182803522145153e-6],
      [0.01, 10, 20, 0.00019129699912842963],
      [0.1, 100, 20.5, 0.00019991818458068295],
      [0.99, 0.1, 256, 3263997.427114021],
      [0.999, 100, 256.1, 3.260108037973113],
    ];
    for (const [q, sigma, order, logA] of cases) {
      const [rdp] = rdpPoissonGaussian(q, sigma, 1, [order]);
      expectClose((rdp as number) * (order - 1), logA, 1e-4, 1e-8);
    }
  });

  it("handles the large orders without overflow", () => {
    // dp_accounting's _compute_rdp_poisson_subsampled_gaussian(0.01, 1, [256, 1024]).
    const [at256, at1024] = rdpPoissonGaussian(0.01, 1, 1, [256, 1024]);
    expectClose(at256 as number, 123.37677032308648, 1e-12);
    expectClose(at1024 as number, 507.39032818137656, 1e-12);
  });

  it("is 0 without sampling, alpha/(2 z^2) per step with q = 1, and Infinity at order Infinity", () => {
    expect(rdpPoissonGaussian(0, 1, 10, [2, 5.5, Number.POSITIVE_INFINITY])).toEqual([0, 0, 0]);
    expect(rdpPoissonGaussian(1, 2, 3, [1, 2.5, 32])).toEqual([3 / 8, 7.5 / 8, 96 / 8]);
    expect(rdpPoissonGaussian(0.5, 2, 1, [Number.POSITIVE_INFINITY])).toEqual([Number.POSITIVE_INFINITY]);
  });

  it("lists dp_accounting's default orders", () => {
    expect(DEFAULT_RDP_ORDERS).toHaveLength(99 + 53 + 4);
    expect(DEFAULT_RDP_ORDERS.slice(0, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(DEFAULT_RDP_ORDERS.slice(97, 101)).toEqual([10.8, 10.9, 11, 12]);
    expect(DEFAULT_RDP_ORDERS.slice(-5)).toEqual([63, 128, 256, 512, 1024]);
  });
});

describe("RDP to (epsilon, delta)", () => {
  it("reproduces dp_accounting's test_compute_epsilon_delta_pure_dp", () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const { epsilon, order } = rdpToEpsilon(orders, new Array<number>(31).fill(1.1), 1e-5);
    expectClose(epsilon, 1.32783806176);
    expect(order).toBe(32);
  });

  it("reproduces dp_accounting's test_compute_epsilon_delta_gaussian", () => {
    const orders = Array.from({ length: 99_000 }, (_, i) => 0.001 * (i + 1000));
    const rdp = rdpPoissonGaussian(1, 4.530877117, 1, orders);
    expectClose(rdpToEpsilon(orders, rdp, 1e-6).epsilon, 1.0000000003);
  });

  it("reproduces Opacus's test_rdp_accountant: z = 1.5, q = 0.04, 2250 steps", () => {
    // Opacus sums the signed series (7.32911117); the |binomial| bound moves it by 3e-5 relative.
    const epsilon = rdpEpsilon({
      samplingRate: 0.04,
      noiseMultiplier: 1.5,
      steps: 2250,
      delta: 1e-5,
      orders: OPACUS_ORDERS,
    });
    expectClose(epsilon, 7.32911);
  });

  it("is the same for (z = 1, T = 1) and (z = 10, T = 100) with q = 1: 4.72851, above the exact 4.37718", () => {
    const one = rdpEpsilon({ samplingRate: 1, noiseMultiplier: 1, steps: 1, delta: 1e-5 });
    const hundred = rdpEpsilon({ samplingRate: 1, noiseMultiplier: 10, steps: 100, delta: 1e-5 });
    expectClose(one, 4.72851);
    expectClose(hundred, one, 1e-12);
    expect(one).toBeGreaterThan(exactGaussianEpsilon([1], 1e-5));
  });

  it("keeps dp_accounting's edge cases", () => {
    // Orders at or below 1.01 give no bound; tiny divergence gives 0 through the KL bound; negative is 0.
    expect(rdpToEpsilon([1.01], [0.5], 1e-5).epsilon).toBe(Number.POSITIVE_INFINITY);
    expect(rdpToEpsilon([2], [1e-12], 1e-5).epsilon).toBe(0);
    expect(rdpToEpsilon([2], [-1e-9], 1e-5).epsilon).toBe(0);
    // At order Infinity the bound tends to the divergence itself (pure DP).
    expect(rdpToEpsilon([Number.POSITIVE_INFINITY], [0.7], 1e-5)).toEqual({
      epsilon: 0.7,
      order: Number.POSITIVE_INFINITY,
    });
  });
});

describe("noiseMultiplierForEpsilon", () => {
  const cases = [
    { targetEpsilon: 8, steps: 2250, delta: 1e-5, samplingRate: 0.04 },
    { targetEpsilon: 3, steps: 1000, delta: 1e-6, samplingRate: 0.01 },
    { targetEpsilon: 1, steps: 100, delta: 1e-5 },
    { targetEpsilon: 4.37718, steps: 1, delta: 1e-5, samplingRate: 1 },
  ];

  it.each(cases)("finds the smallest z that meets %o", (target) => {
    const z = noiseMultiplierForEpsilon(target);
    const epsilonAt = (noiseMultiplier: number) =>
      (target.samplingRate ?? 1) < 1
        ? rdpEpsilon({
            samplingRate: target.samplingRate as number,
            noiseMultiplier,
            steps: target.steps,
            delta: target.delta,
          })
        : exactGaussianEpsilon(new Array<number>(target.steps).fill(noiseMultiplier), target.delta);
    expect(epsilonAt(z)).toBeLessThanOrEqual(target.targetEpsilon);
    expect(epsilonAt(z * (1 - 1e-4))).toBeGreaterThan(target.targetEpsilon);
    expect(Number(z.toPrecision(7))).toBe(z);
  });

  it("gives z = 1 back for the epsilon of z = 1 (exact, q = 1)", () => {
    const epsilon = exactGaussianEpsilon([1], 1e-5);
    expectClose(noiseMultiplierForEpsilon({ targetEpsilon: epsilon, steps: 1, delta: 1e-5 }), 1, 1e-6);
  });
});

describe("input checks", () => {
  const bad: [string, () => unknown, RegExp][] = [
    ["zero noise", () => gaussianMu([1, 0]), /noiseMultipliers\[1\].*above 0/],
    ["NaN noise", () => rdpPoissonGaussian(0.1, Number.NaN, 1, [2]), /noiseMultiplier/],
    ["delta 0", () => exactGaussianEpsilon([1], 0), /delta must lie strictly between 0 and 1/],
    ["delta 1", () => gdpEpsilon(1, 1), /delta/],
    ["negative mu", () => gdpDelta(-1, 1), /mu must be/],
    ["negative epsilon", () => gdpDelta(1, -1), /epsilon must be/],
    ["q above 1", () => rdpPoissonGaussian(1.5, 1, 1, [2]), /samplingRate must lie in \[0, 1\]/],
    ["fractional steps", () => rdpPoissonGaussian(0.1, 1, 2.5, [2]), /steps must be a whole number/],
    [
      "zero steps",
      () => rdpEpsilon({ samplingRate: 0.1, noiseMultiplier: 1, steps: 0, delta: 1e-5 }),
      /steps/,
    ],
    ["order below 1", () => rdpPoissonGaussian(0.1, 1, 1, [2, 0.5]), /orders\[1\] = 0.5/],
    ["length mismatch", () => rdpToEpsilon([2, 3], [1], 1e-5), /equal length/],
    ["no orders", () => rdpToEpsilon([], [], 1e-5), /non-empty/],
    ["NaN rdp", () => rdpToEpsilon([2], [Number.NaN], 1e-5), /rdp\[0\] is NaN/],
    [
      "target 0",
      () => noiseMultiplierForEpsilon({ targetEpsilon: 0, steps: 1, delta: 1e-5 }),
      /targetEpsilon/,
    ],
    [
      "q = 0 target",
      () => noiseMultiplierForEpsilon({ targetEpsilon: 1, steps: 1, delta: 1e-5, samplingRate: 0 }),
      /samplingRate is 0/,
    ],
  ];

  it.each(bad)("rejects %s with a RangeError naming the parameter", (_, call, message) => {
    expect(call).toThrow(RangeError);
    expect(call).toThrow(message);
  });
});

describe("integer RDP orders for the discrete Gaussian (DP-SGD)", () => {
  /** E_P[(Q/P)^a] for P = N_Z(0, s^2), Q = N_Z(mu, s^2), summed over the integers (log-sum for range). */
  function discreteMoment(s: number, mu: number, a: number): number {
    const reach = Math.ceil(60 * s + Math.abs(a * mu));
    const logWeight = (x: number, m: number) => -((x - m) ** 2) / (2 * s * s);
    let z = 0;
    for (let x = -reach; x <= reach; x++) z += Math.exp(logWeight(x, 0));
    let sum = 0;
    for (let x = -reach; x <= reach; x++)
      sum += Math.exp((1 - a) * logWeight(x, 0) + a * logWeight(x, mu)) / z;
    return sum;
  }

  it.each([
    [0.8, 1],
    [2.5, 2],
    [3.7, 3],
  ])(
    "match the continuous Gaussian's moments exactly at integer orders (s = %s, integer shift %s)",
    (s, mu) => {
      for (const a of [2, 3, 4, 5]) {
        const want = Math.exp((a * (a - 1) * mu * mu) / (2 * s * s));
        expect(Math.abs(discreteMoment(s, mu, a) / want - 1)).toBeLessThan(1e-12);
      }
    },
  );

  it("do not at a fractional order, which is why only integer orders are used", () => {
    // A coarse lattice (s = 0.5) makes the difference plain (2.8%); at integer orders it is below 1e-12 (above).
    const a = 2.5;
    const want = Math.exp((a * (a - 1)) / (2 * 0.25));
    expect(Math.abs(discreteMoment(0.5, 1, a) / want - 1)).toBeGreaterThan(0.01);
  });

  it("are integers from 2 up, sorted", () => {
    expect(INTEGER_RDP_ORDERS.every((a) => Number.isInteger(a) && a >= 2)).toBe(true);
    expect([...INTEGER_RDP_ORDERS]).toEqual([...INTEGER_RDP_ORDERS].sort((x, y) => x - y));
  });
});
