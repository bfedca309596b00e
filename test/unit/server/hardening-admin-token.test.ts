import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { adminPaths } from "../../../src/core/admin-protocol";
import type { Db } from "../../../src/server/db";
import type { Storage } from "../../../src/server/storage";
import { bearer, closeTestApp, openTestApp } from "./helpers";

// The real comparison, watched: every call goes through to node:crypto unless a test says otherwise.
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

/** Acceptance of issue 12: the admin token comparison really is constant-time. */
describe("admin token check: timingSafeEqual decides", () => {
  let db: Db;
  let storage: Storage;
  let app: FastifyInstance;
  let adminToken: string;
  const compare = vi.mocked(timingSafeEqual);
  beforeAll(async () => {
    ({ db, storage, app } = await openTestApp());
    adminToken = (await storage.admin.ensureAdminToken()) as string;
  });
  afterAll(() => closeTestApp({ app, db }));
  // In braces: mockClear returns the mock, which beforeEach would take for a cleanup function and call.
  beforeEach(() => {
    compare.mockClear();
  });

  const federations = (token: string) => app.inject({ url: adminPaths.federations, headers: bearer(token) });
  const sha256 = (text: string) => createHash("sha256").update(text).digest();

  it("compares the SHA-256 of the presented token with the stored hash through timingSafeEqual", async () => {
    const right = await federations(adminToken);
    const callsForRight = compare.mock.calls.slice();
    compare.mockClear();
    const short = await federations("x");

    expect(right.statusCode).toBe(200);
    expect(callsForRight).toHaveLength(1);
    const [presented, stored] = callsForRight[0] as [Buffer, Buffer];
    expect(Buffer.from(presented).equals(sha256(adminToken))).toBe(true);
    expect(Buffer.from(stored).equals(sha256(adminToken))).toBe(true);
    // A one-character token is compared in full too: the lengths compared never depend on the guess.
    expect(short.statusCode).toBe(401);
    expect(compare).toHaveBeenCalledTimes(1);
    const [shortPresented] = compare.mock.calls[0] as [Buffer, Buffer];
    expect(shortPresented.byteLength).toBe(32);
  });

  it("takes timingSafeEqual's verdict, so no other comparison stands in for it", async () => {
    compare.mockReturnValueOnce(true);
    const wrongButEqual = await federations(`${adminToken}-wrong`);
    compare.mockReturnValueOnce(false);
    const rightButUnequal = await federations(adminToken);

    expect(wrongButEqual.statusCode).toBe(200);
    expect(rightButUnequal.statusCode).toBe(401);
  });
});
