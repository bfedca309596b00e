import { InputError } from "../../src/core/errors";
import { checkWidth, type ExampleShard, type ShardSource } from "./trainer";

/**
 * The site's training units (patients; rows or images where the plan has none) and where their examples
 * lie in the shards, for DP-SGD's Poisson sampling by unit. One pass over the shards keeps 12 bytes per
 * example (never the features); the examples themselves are read again per step, through a bounded cache.
 */
export interface UnitIndex {
  /** N: the units of the split, numbered 0..N-1 locally in order of first appearance. */
  units: number;
  examples: number;
  /** The examples of local unit u are `order[start[u]]` .. `order[start[u + 1] - 1]` (global positions). */
  start: Uint32Array;
  order: Uint32Array;
  /** Global position of each shard's first example; shardStart[shardCount] = examples. */
  shardStart: Float64Array;
}

/** 32 MiB of shards at most: 8 image shards of 64×64 pixels, or about 1000 of a 30-feature table. */
export const DEFAULT_CACHE_BYTES = 32 * 2 ** 20;

/** Least recently used shards, up to a byte budget (one shard is always kept, however large). */
export class ShardCache {
  private readonly held = new Map<number, ExampleShard>();
  private bytes = 0;
  /** Shard reads that went to the source (for tests and the bench). */
  reads = 0;

  constructor(
    private readonly source: ShardSource,
    private readonly dim: number,
    private readonly maxBytes = DEFAULT_CACHE_BYTES,
  ) {}

  async get(index: number): Promise<ExampleShard> {
    const hit = this.held.get(index);
    if (hit) {
      this.held.delete(index);
      this.held.set(index, hit);
      return hit;
    }
    const shard = checkUnits(checkWidth(await this.source.shard(index), this.dim), index);
    this.reads++;
    this.held.set(index, shard);
    this.bytes += sizeOf(shard);
    for (const [key, old] of this.held) {
      if (this.bytes <= this.maxBytes || key === index) break;
      this.held.delete(key);
      this.bytes -= sizeOf(old);
    }
    return shard;
  }
}

function sizeOf(shard: ExampleShard): number {
  return shard.x.byteLength + shard.y.byteLength + (shard.unit?.byteLength ?? 0);
}

function checkUnits(shard: ExampleShard, index: number): ExampleShard {
  if (shard.unit !== undefined && shard.unit.length !== shard.count) {
    throw new InputError(
      `Stored shard ${index} names the patients of ${shard.unit.length} examples but holds ${shard.count}; import the file again.`,
    );
  }
  return shard;
}

/**
 * Reads every shard once and groups example positions by unit. A shard without unit numbers makes each of
 * its examples a unit of its own. `expectedUnits` (the import's count) must match what the shards hold:
 * a mismatch would make the sampling rate, and so epsilon, wrong.
 */
export async function indexUnits(
  source: ShardSource,
  cache: ShardCache,
  expectedUnits?: number,
): Promise<UnitIndex> {
  const shardCount = await source.shardCount();
  const shardStart = new Float64Array(shardCount + 1);
  const perShard: (Uint32Array | undefined)[] = [];
  for (let s = 0; s < shardCount; s++) {
    const shard = await cache.get(s);
    perShard.push(shard.unit);
    shardStart[s + 1] = (shardStart[s] as number) + shard.count;
  }
  const examples = shardStart[shardCount] as number;
  const local = new Uint32Array(examples);
  const numbering = new Map<number, number>();
  let fresh = 0;
  for (let s = 0, position = 0; s < shardCount; s++) {
    const units = perShard[s];
    const count = (shardStart[s + 1] as number) - (shardStart[s] as number);
    for (let r = 0; r < count; r++, position++) {
      if (units === undefined) {
        local[position] = fresh++;
        continue;
      }
      const stored = units[r] as number;
      let u = numbering.get(stored);
      if (u === undefined) {
        u = fresh++;
        numbering.set(stored, u);
      }
      local[position] = u;
    }
  }
  if (expectedUnits !== undefined && expectedUnits !== fresh) {
    throw new InputError(
      `The imported data list ${expectedUnits} patients (units) for training but the stored shards hold ${fresh}; import the file again.`,
    );
  }
  // Counting sort by unit: each unit's examples stay in shard order, so a step reads shards in order.
  const start = new Uint32Array(fresh + 1);
  for (let i = 0; i < examples; i++) {
    const u = (local[i] as number) + 1;
    start[u] = (start[u] as number) + 1;
  }
  for (let u = 0; u < fresh; u++) start[u + 1] = (start[u + 1] as number) + (start[u] as number);
  const next = start.slice(0, fresh);
  const order = new Uint32Array(examples);
  for (let i = 0; i < examples; i++) {
    const u = local[i] as number;
    const at = next[u] as number;
    order[at] = i;
    next[u] = at + 1;
  }
  return { units: fresh, examples, start, order, shardStart };
}

/** A microbatch of whole units: their examples flat, and each example's unit within the microbatch. */
export interface Microbatch {
  units: number;
  count: number;
  x: Float32Array;
  y: Float32Array;
  unitOf: Uint32Array;
}

/**
 * Cuts the sampled units (sorted local unit numbers) into microbatches of whole units, and gathers their
 * examples through the cache. A microbatch holds at most `maxExamples` slots, counted as units times its
 * largest unit's examples: per-example clipping pads every unit to the largest (workers/train/dp/norms.ts
 * unitLayout). A unit larger than that goes alone. Units are taken in order, so consecutive microbatches
 * read neighbouring shards.
 */
export async function* microbatches(
  index: UnitIndex,
  sampled: Uint32Array,
  cache: ShardCache,
  dim: number,
  maxExamples: number,
): AsyncGenerator<Microbatch> {
  let first = 0;
  while (first < sampled.length) {
    let last = first;
    let count = 0;
    let largest = 0;
    while (last < sampled.length) {
      const u = sampled[last] as number;
      const size = (index.start[u + 1] as number) - (index.start[u] as number);
      const padded = (last - first + 1) * Math.max(largest, size);
      if (last > first && padded > maxExamples) break;
      count += size;
      largest = Math.max(largest, size);
      last++;
    }
    yield gather(index, sampled.subarray(first, last), count, cache, dim);
    first = last;
  }
}

async function gather(
  index: UnitIndex,
  units: Uint32Array,
  count: number,
  cache: ShardCache,
  dim: number,
): Promise<Microbatch> {
  const x = new Float32Array(count * dim);
  const y = new Float32Array(count);
  const unitOf = new Uint32Array(count);
  let filled = 0;
  for (const [k, u] of units.entries()) {
    for (let j = index.start[u] as number; j < (index.start[u + 1] as number); j++) {
      const position = index.order[j] as number;
      const s = shardOf(index.shardStart, position);
      const shard = await cache.get(s);
      const row = position - (index.shardStart[s] as number);
      x.set(shard.x.subarray(row * dim, (row + 1) * dim), filled * dim);
      y[filled] = shard.y[row] as number;
      unitOf[filled++] = k;
    }
  }
  return { units: units.length, count, x, y, unitOf };
}

/** The shard holding a global example position (binary search over the shards' first positions). */
function shardOf(shardStart: Float64Array, position: number): number {
  let lo = 0;
  let hi = shardStart.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((shardStart[mid] as number) <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
