import { describe, expect, it } from "vitest";
import { CryptoRandom } from "../../../src/core/random";
import { Sha256, sha256Hex } from "../../../src/core/sha256";
import { seededFill } from "./support";

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const rng = new CryptoRandom(seededFill(seed));
  for (let i = 0; i < n; i++) out[i] = rng.uniformInt(256);
  return out;
}

describe("incremental Sha256", () => {
  it.each([
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
  ])("gives the FIPS 180-4 test vector for %j", (text, expected) => {
    // Execute
    const hex = new Sha256().update(new TextEncoder().encode(text)).digestHex();

    // Assert
    expect(hex).toBe(expected);
  });

  it.each([0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003])(
    "agrees with WebCrypto on %i bytes fed in uneven pieces",
    async (n) => {
      // Prepare
      const data = bytes(n, n + 1);
      const sha = new Sha256();

      // Execute: pieces of 1, 7, 64, 100, ... bytes so every buffer boundary is crossed
      const sizes = [1, 7, 64, 100, 3, 500];
      for (let i = 0, k = 0; i < n; k++) {
        const size = sizes[k % sizes.length] as number;
        sha.update(data.subarray(i, i + size));
        i += size;
      }

      // Assert
      expect(sha.digestHex()).toBe(await sha256Hex(data));
    },
  );

  it("refuses to be updated after its digest", () => {
    // Prepare
    const sha = new Sha256();
    sha.digestHex();

    // Execute
    const execute = () => sha.update(new Uint8Array(1));

    // Assert
    expect(execute).toThrow(/update after digest/);
  });
});
