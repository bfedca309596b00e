/**
 * Splitting a pooled dataset into simulated sites, for the workshop demo (src/app/simulation). The
 * randomness here only decides which example goes where, so it comes from a seeded PRNG (the same seed gives
 * the same split, so a demo can be repeated); it has nothing to do with privacy. Noise for privacy comes
 * only from src/core/random.ts (crypto.getRandomValues).
 */

/** A uniform number in [0, 1). */
export type Uniform = () => number;

/** mulberry32 (Tommy Ettinger, public domain): a small 32-bit-state PRNG, good enough to deal examples. */
export function seededUniform(seed: number): Uniform {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`The seed must be a whole number, got ${seed}.`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates, in place. */
export function shuffleInPlace<T>(items: T[], uniform: Uniform): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function checkSites(sites: number, examples: number): void {
  if (!(Number.isInteger(sites) && sites >= 1)) {
    throw new RangeError(`The number of sites must be a whole number of 1 or more, got ${sites}.`);
  }
  if (examples < sites) {
    throw new RangeError(`${examples} examples cannot be split over ${sites} sites; use fewer sites.`);
  }
}

/** Indices 0..n-1 split into a held-out part of round(fraction * n) examples and the rest, at random. */
export function holdoutSplit(
  n: number,
  fraction: number,
  uniform: Uniform,
): { train: number[]; holdout: number[] } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`The held-out fraction must lie strictly between 0 and 1, got ${fraction}.`);
  }
  const order = shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    uniform,
  );
  const cut = Math.round(fraction * n);
  return {
    holdout: order.slice(0, cut).sort((a, b) => a - b),
    train: order.slice(cut).sort((a, b) => a - b),
  };
}

/** IID: the examples shuffled, then dealt round-robin, so site sizes differ by at most one. */
export function partitionIid(n: number, sites: number, uniform: Uniform): number[][] {
  checkSites(sites, n);
  const parts: number[][] = Array.from({ length: sites }, () => []);
  shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    uniform,
  ).forEach((index, k) => {
    parts[k % sites]?.push(index);
  });
  return parts;
}

/** A standard normal draw (Box–Muller). */
function normal(uniform: Uniform): number {
  const u = 1 - uniform();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
}

/**
 * log of a Gamma(shape, 1) draw: Marsaglia & Tsang 2000 for shape >= 1, and for shape < 1 the boost
 * Gamma(a) = Gamma(a + 1) * U^(1/a) (their section 6), kept in logs because U^(1/a) underflows for small a.
 */
export function logGamma(shape: number, uniform: Uniform): number {
  if (shape < 1) return logGamma(shape + 1, uniform) + Math.log(1 - uniform()) / shape;
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(uniform);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - uniform();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return Math.log(d * v);
  }
}

/** A Dirichlet(concentrations) draw, from normalised Gamma draws (normalised in logs, see logGamma). */
export function dirichlet(concentrations: readonly number[], uniform: Uniform): number[] {
  const logs = concentrations.map((a) => logGamma(a, uniform));
  const top = Math.max(...logs);
  const weights = logs.map((l) => Math.exp(l - top));
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / sum);
}

/**
 * Non-IID label skew as in Hsu, Qi & Brown 2019 ("Measuring the effects of non-identical data distribution
 * for federated visual classification", arXiv:1909.06335, section 3): each site draws its class mix
 * q ~ Dir(alpha * p), p the pooled class frequencies, and gets examples drawn by q. Small alpha: each site
 * mostly one class; large alpha: every site like the pool. Sites are equal in size (±1) and every example
 * is used: example slots are filled round-robin over the sites, each slot from the site's mix among the
 * classes not yet used up, so running out of a class hits every site alike rather than the last one.
 */
export function partitionDirichlet(
  labels: readonly number[],
  sites: number,
  alpha: number,
  uniform: Uniform,
): number[][] {
  checkSites(sites, labels.length);
  if (!(Number.isFinite(alpha) && alpha > 0)) {
    throw new RangeError(`The Dirichlet concentration alpha must be a number above 0, got ${alpha}.`);
  }
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const pools = classes.map((c) =>
    shuffleInPlace(
      labels.flatMap((l, i) => (l === c ? [i] : [])),
      uniform,
    ),
  );
  const prior = pools.map((p) => p.length / labels.length);
  const mixes = Array.from({ length: sites }, () =>
    dirichlet(
      prior.map((p) => alpha * p),
      uniform,
    ),
  );
  const parts: number[][] = Array.from({ length: sites }, () => []);
  for (let slot = 0; slot < labels.length; slot++) {
    const site = slot % sites;
    const mix = mixes[site] as number[];
    const open = pools.map((p, k) => (p.length > 0 ? (mix[k] as number) : 0));
    let total = open.reduce((a, b) => a + b, 0);
    // A mix can put (numerically) all its weight on used-up classes: then any class left will do.
    if (!(total > 0)) {
      open.forEach((_, k) => {
        open[k] = (pools[k] as number[]).length > 0 ? 1 : 0;
      });
      total = open.reduce((a, b) => a + b, 0);
    }
    let r = uniform() * total;
    let k = -1;
    // The last open class takes what rounding leaves of r.
    for (let j = 0; j < open.length; j++) {
      if ((open[j] as number) <= 0) continue;
      k = j;
      r -= open[j] as number;
      if (r < 0) break;
    }
    parts[site]?.push((pools[k] as number[]).pop() as number);
  }
  return parts;
}

/**
 * How far the sites' label mixes are from the pool's: the mean over sites of the total variation distance
 * 0.5 * sum_k |q_site(k) - p(k)|. 0 when every site looks like the pool; for two classes at most 1.
 */
export function labelSkew(labels: readonly number[], parts: readonly (readonly number[])[]): number {
  const classes = [...new Set(labels)];
  const share = (indices: readonly number[], c: number) =>
    indices.filter((i) => labels[i] === c).length / Math.max(1, indices.length);
  const all = labels.map((_, i) => i);
  const distances = parts.map(
    (part) => 0.5 * classes.reduce((s, c) => s + Math.abs(share(part, c) - share(all, c)), 0),
  );
  return distances.reduce((a, b) => a + b, 0) / Math.max(1, parts.length);
}
