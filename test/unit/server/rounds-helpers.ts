import type { FastifyInstance } from "fastify";
import { expect } from "vitest";
import type { Plan } from "../../../src/core/plan";
import { apiPaths, type EnrollResponse, type FederationState } from "../../../src/core/protocol";
import { decodeVector, WireKind } from "../../../src/core/wire";
import type { Db } from "../../../src/server/db";
import { Storage } from "../../../src/server/storage";
import { bearer, openTestDb, TEST_PARAMS, testApp, testPlan } from "./helpers";

/** 10-minute rounds, extended by 5 minutes while short of the quorum. */
export const DEADLINE = { minutes: 10, extendMinutes: 5 } as const;
export const MINUTE = 60_000;

export function deadlinePlan(overrides: Partial<Plan> = {}): Plan {
  return testPlan({ roundDeadline: { ...DEADLINE }, rounds: 3, minSites: 2, ...overrides });
}

/** A clock the test moves by hand, starting at a fixed instant. */
export function fakeClock(start = Date.parse("2027-03-01T08:00:00.000Z")) {
  const clock = { now: start, advance: (ms: number) => (clock.now += ms) };
  return clock;
}

/**
 * A migrated PGlite, Storage reading `clock`, and the app. The app's round clock reads the same clock, so it
 * can act only after the test moved it past a deadline: assert on the outcome, not on who settled it.
 */
export async function clockedApp(clock: { now: number }, db?: Db) {
  const opened = db ?? (await openTestDb());
  const storage = new Storage(opened, undefined, { now: () => clock.now });
  return { db: opened, storage, app: testApp(storage) };
}

export async function siteState(
  app: FastifyInstance,
  site: EnrollResponse,
  receiptFor?: number,
): Promise<FederationState> {
  const response = await app.inject({
    url: apiPaths.state(site.federationId, receiptFor),
    headers: bearer(site.token),
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<FederationState>();
}

export async function modelOf(app: FastifyInstance, site: EnrollResponse, version: number) {
  const response = await app.inject({
    url: apiPaths.model(site.federationId, version),
    headers: bearer(site.token),
  });
  expect(response.statusCode, response.body).toBe(200);
  return decodeVector(response.rawPayload, { kind: WireKind.model, count: TEST_PARAMS }).values;
}

/** FedAvg in float64 from the float32 deltas, rounded once to float32. */
export function globalPlusMean(global: Float32Array, deltas: Float32Array[]): Float32Array {
  return Float32Array.from(
    global,
    (g, i) => g + deltas.reduce((sum, d) => sum + (d[i] as number), 0) / deltas.length,
  );
}
