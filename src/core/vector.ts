/** Plain Float32Array vectors: the core never sees a tensor. Norms accumulate in float64. */

export function l2Norm(v: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    sum += x * x;
  }
  return Math.sqrt(sum);
}

export function subtract(a: Float32Array, b: Float32Array): Float32Array {
  assertSameLength(a, b, "subtract");
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) - (b[i] as number);
  return out;
}

export function assertSameLength(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) {
    throw new RangeError(`${what}: vectors have different lengths (${a.length} and ${b.length})`);
  }
}

export function allFinite(v: ArrayLike<number>): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i] as number)) return false;
  return true;
}

/** Splits a flat vector into per-tensor views (no copy) following the given shapes. */
export function splitByShapes(v: Float32Array, shapes: number[][]): Float32Array[] {
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const shape of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    parts.push(v.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== v.length) {
    throw new RangeError(`splitByShapes: shapes cover ${offset} values but the vector has ${v.length}`);
  }
  return parts;
}

export function concat(parts: ArrayLike<number>[]): Float32Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
