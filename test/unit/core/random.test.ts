import { afterEach, describe, expect, it, vi } from "vitest";
import { initialWeights } from "../../../src/core/model-format";
import { parsePlan } from "../../../src/core/plan";
import { privatizeDelta } from "../../../src/core/privacy/mechanism";
import { CryptoRandom } from "../../../src/core/random";
import { chiSquareSurvival, demoPlanJson, scriptedFill, seededFill } from "./support";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe("CryptoRandom byte handling", () => {
  it("reads uint32s as whole words of the byte source (little-endian) and asks for blocks of exactly 65536 bytes", () => {
    // Prepare
    const { fill, requests } = scriptedFill([0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0xfe]);
    const rng = new CryptoRandom(fill);

    // Execute
    const first = rng.uint32();
    const second = rng.uint32();

    // Assert
    expect(first).toBe(0x78563412);
    expect(second).toBe(0xfeffffff);
    expect(requests).toEqual([65536]);
  });

  it("refills only when a block is used up", () => {
    // Prepare
    const { fill, requests } = scriptedFill([]);
    const rng = new CryptoRandom(fill);

    // Execute
    for (let i = 0; i < 16384; i++) rng.uint32();
    const afterOneBlock = requests.length;
    rng.uint32();

    // Assert
    expect(afterOneBlock).toBe(1);
    expect(requests).toEqual([65536, 65536]);
  });
});

describe("uniformInt", () => {
  it("rejects 0xFFFFFFFF for n = 3 (the one value that makes 0 more likely than 1 and 2)", () => {
    // Prepare: 2^32 = 3 * 1431655765 + 1, so only 0xFFFFFFFF lies in the biased top.
    const { fill } = scriptedFill([0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x05]);
    const rng = new CryptoRandom(fill);

    // Execute
    const first = rng.uniformInt(3);
    const second = rng.uniformInt(3);

    // Assert: without rejection the first draw would be 0xFFFFFFFF % 3 = 0
    expect(first).toBe(7 % 3);
    expect(second).toBe(5 % 3);
  });

  it("accepts 0xFFFFFFFE for n = 3, the largest unbiased value", () => {
    // Prepare
    const { fill } = scriptedFill([0xfe, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00]);
    const rng = new CryptoRandom(fill);

    // Execute
    const value = rng.uniformInt(3);

    // Assert
    expect(value).toBe(0xfffffffe % 3);
  });

  it("rejects everything from n up for n = 2^31 + 1, where almost half the range is biased", () => {
    // Prepare: limit = 2^32 - (2^32 mod n) = 2^31 + 1; words 0x80000001, 0xffffffff, 0x80000000 (little-endian)
    const { fill } = scriptedFill([0x01, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80]);
    const rng = new CryptoRandom(fill);

    // Execute
    const value = rng.uniformInt(2 ** 31 + 1);

    // Assert
    expect(value).toBe(2 ** 31);
  });

  it("rejects nothing for n = 2^32 and n = 2^k", () => {
    // Prepare
    const { fill } = scriptedFill([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const rng = new CryptoRandom(fill);

    // Execute
    const full = rng.uniformInt(2 ** 32);
    const low = rng.uniformInt(2 ** 10);

    // Assert
    expect(full).toBe(0xffffffff);
    expect(low).toBe(1023);
  });

  it.each([0, -1, 1.5, 2 ** 32 + 1, Number.NaN])("refuses n = %s", (n) => {
    // Prepare
    const rng = new CryptoRandom(seededFill(1));

    // Execute
    const execute = () => rng.uniformInt(n);

    // Assert
    expect(execute).toThrow(RangeError);
  });

  it("is uniform over 7 values (chi-square, 70000 seeded draws)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(77));
    const counts = new Array<number>(7).fill(0);

    // Execute
    for (let i = 0; i < 70000; i++) {
      const k = rng.uniformInt(7);
      counts[k] = (counts[k] as number) + 1;
    }

    // Assert: chi-square with 6 degrees of freedom
    const statistic = counts.reduce((s, c) => s + (c - 10000) ** 2 / 10000, 0);
    expect(chiSquareSurvival(statistic, 6)).toBeGreaterThan(1e-6);
  });
});

describe("uniformBigInt", () => {
  it("rejects values at or above n and drops the excess bits", () => {
    // Prepare: n = 2^33 + 1 needs 34 bits, drawn as 5 bytes shifted right by 6
    const n = 2n ** 33n + 1n;
    const { fill } = scriptedFill([0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xc0]);
    const rng = new CryptoRandom(fill);

    // Execute
    const value = rng.uniformBigInt(n);

    // Assert: the first draw is 2^34 - 1 >= n; the second is 0xc0 >> 6 = 3
    expect(value).toBe(3n);
  });

  it("stays in [0, n) and averages n/2 for a 67-bit n (20000 seeded draws)", () => {
    // Prepare
    const n = 10n ** 20n + 7n;
    const rng = new CryptoRandom(seededFill(5150));
    const draws = 20000;

    // Execute
    let inRange = true;
    let sum = 0;
    for (let i = 0; i < draws; i++) {
      const x = rng.uniformBigInt(n);
      if (x < 0n || x >= n) inRange = false;
      sum += Number(x) / Number(n);
    }

    // Assert: the mean of U(0,1) has standard error 1/sqrt(12 * draws)
    expect(inRange).toBe(true);
    expect(Math.abs(sum / draws - 0.5)).toBeLessThan(4 / Math.sqrt(12 * draws));
  });

  it("uses uniformInt for n up to 2^32", () => {
    // Prepare
    const { fill } = scriptedFill([0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x07]);
    const rng = new CryptoRandom(fill);

    // Execute
    const value = rng.uniformBigInt(3n);

    // Assert
    expect(value).toBe(1n);
  });

  it("refuses n <= 0", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(2));

    // Execute
    const execute = () => rng.uniformBigInt(0n);

    // Assert
    expect(execute).toThrow(RangeError);
  });
});

describe("bernoulli", () => {
  it("has frequency num/den = 5/17 within 4 standard errors (100000 seeded draws)", () => {
    // Prepare
    const rng = new CryptoRandom(seededFill(99));
    const draws = 100000;

    // Execute
    let hits = 0;
    for (let i = 0; i < draws; i++) if (rng.bernoulli(5n, 17n)) hits++;

    // Assert
    const p = 5 / 17;
    expect(Math.abs(hits / draws - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / draws));
  });
});

describe("where noise bytes come from", () => {
  it("never calls Math.random while noising an update or drawing initial weights", () => {
    // Prepare
    const random = vi.spyOn(Math, "random");
    const plan = parsePlan(demoPlanJson());
    const delta = Float32Array.from({ length: 257 }, (_, i) => Math.sin(i));

    // Execute
    privatizeDelta(delta, plan.privacy);
    initialWeights(plan);

    // Assert
    expect(random).not.toHaveBeenCalled();
  });

  it("takes bytes from crypto.getRandomValues, never more than 65536 at a time", () => {
    // Prepare
    const getRandomValues = vi.spyOn(globalThis.crypto, "getRandomValues");
    const delta = new Float32Array(20000);

    // Execute
    privatizeDelta(delta, { clipNorm: 1, noiseMultiplier: 0.7, delta: 1e-5 });

    // Assert
    expect(getRandomValues.mock.calls.length).toBeGreaterThanOrEqual(2);
    for (const [array] of getRandomValues.mock.calls) {
      expect((array as ArrayBufferView).byteLength).toBeLessThanOrEqual(65536);
    }
  });

  it("fails loudly when crypto.getRandomValues is missing", () => {
    // Prepare
    vi.stubGlobal("crypto", undefined);
    const rng = new CryptoRandom();

    // Execute
    const execute = () => rng.uint32();

    // Assert
    expect(execute).toThrow(/getRandomValues is not available/);
  });
});
