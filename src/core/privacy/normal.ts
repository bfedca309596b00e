/**
 * The standard normal CDF and the complementary error function, accurate to a few ulps in relative terms
 * far into the tails, and in log space where the value itself underflows (log Φ(-1e150) is finite).
 *
 * Everything rests on W. J. Cody's rational Chebyshev approximations (Cody 1969, "Rational Chebyshev
 * approximations for the error function", Math. Comp. 23, 631-637; the coefficients of SPECFUN's CALERF):
 * erf on |x| <= 0.46875, and the scaled erfcx(x) = exp(x^2) erfc(x) on [0.46875, 4] and on (4, inf), where
 * the last is a rational function of 1/x^2 (the asymptotic series made exact to double precision). The
 * factor exp(-x^2) is split off exactly (`expNegSquare`), so neither rounding of x^2 nor its underflow
 * spoils the result, and log space only ever needs log(erfcx) - x^2.
 */

const ERF_BREAK = 0.46875;
const SQRT_HALF = Math.SQRT1_2;
const INV_SQRT_PI = 0.5641895835477563; // 1 / sqrt(pi)
const LOG_HALF = -Math.LN2;
/** exp(-x^2/2) is below the smallest double (about e^-744) from here on, and exp(-x^2) all the more. */
const UNDERFLOW = 40;

// Cody 1969: erf(x) = x A(x^2) / B(x^2) on |x| <= 0.46875.
const A = [3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315];
const B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171];
// erfcx(x) = C(x) / D(x) on [0.46875, 4].
const C = [
  0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769,
  1712.0476126340707, 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-8,
];
const D = [
  15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597,
  4362.619090143247, 3439.3676741437216, 1230.3393548037495,
];
// erfcx(x) = (1/sqrt(pi) - y P(y) / Q(y)) / x with y = 1/x^2 on (4, inf).
const P = [
  0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275, 0.0006587491615298378,
  0.016315387137302097,
];
const Q = [
  2.568520192289822, 1.8729528499234604, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918,
];

/** erf(x) for |x| <= 0.46875, with full relative accuracy (no cancellation). */
function erfSmall(x: number): number {
  const y = x * x;
  let num = (A[4] as number) * y;
  let den = y;
  for (let i = 0; i < 3; i++) {
    num = (num + (A[i] as number)) * y;
    den = (den + (B[i] as number)) * y;
  }
  return (x * (num + (A[3] as number))) / (den + (B[3] as number));
}

/** erfcx(x) for 0.46875 <= x <= 4. */
function erfcxMid(x: number): number {
  let num = (C[8] as number) * x;
  let den = x;
  for (let i = 0; i < 7; i++) {
    num = (num + (C[i] as number)) * x;
    den = (den + (D[i] as number)) * x;
  }
  return (num + (C[7] as number)) / (den + (D[7] as number));
}

/** erfcx(x) for x > 4; 1/x^2 is 0 past x = 1e154, where the series has no correction left anyway. */
function erfcxTail(x: number): number {
  const y = 1 / (x * x);
  let num = (P[5] as number) * y;
  let den = y;
  for (let i = 0; i < 4; i++) {
    num = (num + (P[i] as number)) * y;
    den = (den + (Q[i] as number)) * y;
  }
  const correction = (y * (num + (P[4] as number))) / (den + (Q[4] as number));
  return (INV_SQRT_PI - correction) / x;
}

/**
 * exp(-x^2) to about one ulp: x = h + l with h = trunc(16x)/16, so h^2 is exact and only the small
 * (x - h)(x + h) is rounded (Cody's splitting, with the two factors exponentiated apart).
 */
function expNegSquare(x: number): number {
  if (Math.abs(x) >= UNDERFLOW) return 0; // also keeps 16x finite
  const h = Math.trunc(16 * x) / 16;
  return Math.exp(-h * h) * Math.exp(-(x - h) * (x + h));
}

/** The error function. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax <= ERF_BREAK) return erfSmall(x);
  const upper = erfcPositive(ax);
  return x < 0 ? upper - 1 : 1 - upper;
}

/** erfc(x) for x >= 0 (0 past x = 26.6, where it underflows). */
function erfcPositive(x: number): number {
  if (x <= ERF_BREAK) return 1 - erfSmall(x);
  return expNegSquare(x) * erfcx(x);
}

/** The complementary error function erfc(x) = 1 - erf(x). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  return x < 0 ? 2 - erfcPositive(-x) : erfcPositive(x);
}

/** The scaled complementary error function erfcx(x) = exp(x^2) erfc(x); overflows to Infinity below -26.6. */
export function erfcx(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < ERF_BREAK) {
    if (x >= 0) return Math.exp(x * x) * (1 - erfSmall(x));
    // erfc(x) = 2 - erfc(-x), so erfcx(x) = 2 exp(x^2) - erfcx(-x).
    return 2 / expNegSquare(x) - erfcx(-x);
  }
  return x <= 4 ? erfcxMid(x) : erfcxTail(x);
}

/** log erfc(x), finite for every finite x whose square does not overflow (|x| < 1.3e154). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x <= ERF_BREAK) return Math.log1p(-erf(x));
  return Math.log(erfcx(x)) - x * x;
}

/** The standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x > 0) return 1 - lowerTail(-x);
  return lowerTail(x);
}

/**
 * Φ(x) for x <= 0. Φ(x) = erfcx(t) exp(-t^2) / 2 with t = -x/sqrt(2), but exp(-t^2) = exp(-x^2/2) is formed
 * from x itself: rounding t would cost a relative error of about x^2 ulps in the tail.
 */
function lowerTail(x: number): number {
  const t = -x * SQRT_HALF;
  if (t <= ERF_BREAK) return 0.5 * (1 - erfSmall(t));
  return 0.5 * erfcx(t) * expNegHalfSquare(x);
}

/** exp(-x^2/2) to about one ulp, split as in `expNegSquare`. */
function expNegHalfSquare(x: number): number {
  if (Math.abs(x) >= UNDERFLOW) return 0;
  const h = Math.trunc(16 * x) / 16;
  return Math.exp(-0.5 * h * h) * Math.exp(-0.5 * (x - h) * (x + h));
}

/** log Φ(x), finite for every finite x with |x| < 1.3e154 (below that, x^2 itself overflows). */
export function logNormalCdf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x > 0) return Math.log1p(-lowerTail(-x));
  const t = -x * SQRT_HALF;
  if (t <= ERF_BREAK) return Math.log(lowerTail(x));
  return LOG_HALF + Math.log(erfcx(t)) - 0.5 * x * x;
}
