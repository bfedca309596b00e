import type { FastifyBaseLogger } from "fastify";
import type { Storage } from "./storage";

/** How often the coordinator looks for rounds whose deadline passed, unless told otherwise. */
export const ROUND_CLOCK_MS = 1000;

/**
 * Closes rounds at their deadlines while nobody asks: every `intervalMs` it settles the rounds whose stored
 * deadline has passed. Requests settle a round lazily too, so a deadline holds even between ticks, after a
 * restart, and across several coordinators (each settling happens in the federation's locked transaction,
 * exactly once). Ticks never overlap; stop() waits for the one in flight.
 */
export function startRoundClock(storage: Storage, log: FastifyBaseLogger, intervalMs = ROUND_CLOCK_MS) {
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    running = storage
      .settleDueRounds()
      .then(
        () => undefined,
        (error: unknown) => log.error({ err: error }, "could not settle the rounds whose deadline passed"),
      )
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  // The clock alone must not keep a process (or a test run) alive.
  timer.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
}
