/** Weight vectors are stored as their raw float32 little-endian bytes (bytea), whatever the host order. */
export function vectorToBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i] as number, true);
  return bytes;
}

export function bytesToVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new RangeError(
      `a stored vector has ${bytes.byteLength} bytes, not a whole number of float32 values`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
  return values;
}

/**
 * A round's running sum: float64 little-endian, so adding hundreds of float32 deltas loses nothing a float32
 * sum would (the mean is rounded to float32 once, at the close).
 */
export function sumToBytes(sum: Float64Array): Uint8Array {
  const bytes = new Uint8Array(sum.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < sum.length; i++) view.setFloat64(8 * i, sum[i] as number, true);
  return bytes;
}

export function bytesToSum(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) {
    throw new RangeError(`a stored sum has ${bytes.byteLength} bytes, not a whole number of float64 values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sum = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < sum.length; i++) sum[i] = view.getFloat64(8 * i, true);
  return sum;
}
