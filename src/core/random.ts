/**
 * Randomness for everything privacy- or security-related: bytes come only from crypto.getRandomValues,
 * integers are drawn by rejection (no modulo bias). getRandomValues fills at most 65,536 bytes per call,
 * so bytes are buffered in blocks of exactly that size.
 */
export type FillRandom = (bytes: Uint8Array) => void;

const BLOCK = 65536;
const TWO_32 = 4294967296;

function cryptoFill(bytes: Uint8Array): void {
  const webCrypto = (globalThis as unknown as { crypto?: { getRandomValues(a: Uint8Array): Uint8Array } })
    .crypto;
  if (!webCrypto?.getRandomValues) {
    throw new Error(
      "crypto.getRandomValues is not available here; fedward refuses to make noise without it.",
    );
  }
  webCrypto.getRandomValues(bytes);
}

export class CryptoRandom {
  private readonly buffer = new Uint8Array(BLOCK);
  private position = BLOCK;
  /** 32-bit words come from their own block, so drawing millions of them is a plain array read. */
  private readonly words = new Uint32Array(BLOCK / 4);
  private wordPosition = BLOCK / 4;

  constructor(private readonly fill: FillRandom = cryptoFill) {}

  private byte(): number {
    if (this.position === BLOCK) {
      this.fill(this.buffer);
      this.position = 0;
    }
    return this.buffer[this.position++] as number;
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    if (this.wordPosition === this.words.length) {
      this.fill(new Uint8Array(this.words.buffer));
      this.wordPosition = 0;
    }
    return this.words[this.wordPosition++] as number;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32, by rejection of the biased top of the range. */
  uniformInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_32) throw new RangeError(`uniformInt: bad range ${n}`);
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [0, n) for any positive BigInt n: draw just enough bits, reject values >= n. */
  uniformBigInt(n: bigint): bigint {
    if (n <= 0n) throw new RangeError("uniformBigInt: n must be positive");
    if (n <= BigInt(TWO_32)) return BigInt(this.uniformInt(Number(n)));
    const bits = n.toString(2).length;
    const bytes = Math.ceil(bits / 8);
    const excess = BigInt(bytes * 8 - bits);
    for (;;) {
      let x = 0n;
      for (let i = 0; i < bytes; i++) x = (x << 8n) | BigInt(this.byte());
      x >>= excess;
      if (x < n) return x;
    }
  }

  /** Exact Bernoulli(num/den) for 0 <= num <= den. */
  bernoulli(num: bigint, den: bigint): boolean {
    return this.uniformBigInt(den) < num;
  }
}
