import rateLimit, { normalizeIP } from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RequestLimits } from "./config";
import { HttpError } from "./http-error";

/** The key both limits count under: the connecting address (an IPv6 client by its /64, as the plugin does). */
const clientKey = (request: FastifyRequest) => normalizeIP(request.ip, 64);

/**
 * Registers @fastify/rate-limit for the routes that opt in with `config: { rateLimit: enrollRateLimit }`;
 * a 429 says how long to wait, and so does its Retry-After header.
 */
export function registerRateLimits(app: FastifyInstance, limits: RequestLimits): void {
  app.register(rateLimit, {
    global: false,
    keyGenerator: clientKey,
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        429,
        `Too many enrolment requests from this address (at most ${context.max} in ${limits.rateLimitWindowS} s); ` +
          `try again in ${Math.ceil(context.ttl / 1000)} s.`,
      ),
  });
}

/** The route option for POST /api/enroll; false when ENROLL_RATE_LIMIT is 0. */
export function enrollRateLimit(limits: RequestLimits) {
  return limits.enrollPerWindow === 0
    ? false
    : { max: limits.enrollPerWindow, timeWindow: limits.rateLimitWindowS * 1000 };
}

/** At most this many addresses are remembered; the oldest go first (an attacker's spread costs memory). */
const MAX_KEYS = 10_000;

/**
 * Counts requests in fixed windows per key. An attempt is counted when it starts and refunded when it turns
 * out fine, so concurrent guesses cannot all slip in before the first of them has failed.
 */
export class AttemptWindow {
  private readonly windows = new Map<string, { count: number; resetsAt: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one attempt; returns the seconds until the key may try again, or undefined when it may now. */
  take(key: string): number | undefined {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || window.resetsAt <= now) {
      this.windows.delete(key);
      window = { count: 0, resetsAt: now + this.windowMs };
      this.windows.set(key, window);
      this.forgetOldest();
    }
    if (window.count >= this.max) return Math.max(1, Math.ceil((window.resetsAt - now) / 1000));
    window.count += 1;
    return undefined;
  }

  refund(key: string): void {
    const window = this.windows.get(key);
    if (window !== undefined && window.count > 0) window.count -= 1;
  }

  /** Map order is window age (a renewed window is re-inserted), so the first entries are the stalest. */
  private forgetOldest(): void {
    for (const key of this.windows.keys()) {
      if (this.windows.size <= MAX_KEYS) return;
      this.windows.delete(key);
    }
  }
}

const ADMIN_PREFIX = "/api/admin/";

/**
 * Limits wrong admin tokens per address. Once an address has sent `adminTokenFailuresPerWindow` of them,
 * every admin request from it gets 429 until the window ends, the right token too: otherwise a guess that
 * hit would still tell itself apart from the misses. Requests without an Authorization header are not
 * guesses and are not counted.
 */
export function addAdminTokenLimit(app: FastifyInstance, limits: RequestLimits): void {
  if (limits.adminTokenFailuresPerWindow === 0) return;
  const attempts = new AttemptWindow(limits.adminTokenFailuresPerWindow, limits.rateLimitWindowS * 1000);
  const counted = new WeakSet<FastifyRequest>();
  const isAdminGuess = (request: FastifyRequest) =>
    request.routeOptions.url?.startsWith(ADMIN_PREFIX) === true &&
    request.headers.authorization !== undefined;

  app.addHook("onRequest", async (request, reply) => {
    if (!isAdminGuess(request)) return;
    const waitS = attempts.take(clientKey(request));
    if (waitS !== undefined) {
      reply.header("retry-after", String(waitS));
      throw new HttpError(
        429,
        `Too many requests with a wrong admin token from this address (${limits.adminTokenFailuresPerWindow} ` +
          `in ${limits.rateLimitWindowS} s); admin requests from it are refused for ${waitS} s. Use the token ` +
          "the coordinator printed at its first start.",
      );
    }
    counted.add(request);
  });
  app.addHook("onResponse", async (request, reply) => {
    if (counted.has(request) && reply.statusCode !== 401 && reply.statusCode !== 403) {
      attempts.refund(clientKey(request));
    }
  });
}
