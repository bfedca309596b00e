import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Invite codes are read aloud and typed by people, so they use Crockford's base32 (no I, L, O, U) and
 * come in groups: 16 characters = 80 random bits, e.g. "7KQ2-M9XD-4RTB-HC0P".
 */
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function base32(bytes: Uint8Array, length: number): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += CROCKFORD[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

export function newInviteCode(): string {
  return base32(randomBytes(10), 16).match(/.{4}/g)?.join("-") ?? "";
}

/**
 * The canonical form of a typed invite code, or undefined when it cannot be one. Case, spaces and dashes
 * do not matter, and the letters people confuse with digits are read as those digits.
 */
export function normaliseInviteCode(typed: string): string | undefined {
  const chars = typed.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  if (chars.length !== 16 || [...chars].some((c) => !CROCKFORD.includes(c))) return undefined;
  return chars.match(/.{4}/g)?.join("-");
}

/** A site's bearer token: 256 random bits; the coordinator keeps only its hash. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Tokens carry 256 bits of entropy, so a plain SHA-256 (no salt, no stretching) cannot be reversed. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Whether `token` hashes to `storedHash` (hex), in time that does not depend on where they differ: the
 * admin token is checked against one stored hash rather than looked up, so compare like a secret.
 */
export function tokenMatchesHash(token: string, storedHash: string): boolean {
  const presented = Buffer.from(hashToken(token), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** Short lowercase ids for URLs, e.g. `${prefix}-k3x9pq2m`. */
export function newId(prefix: string): string {
  return `${prefix}-${base32(randomBytes(5), 8).toLowerCase()}`;
}
