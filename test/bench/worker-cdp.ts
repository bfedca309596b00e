import type { CDPSession, Page } from "playwright-core";

/**
 * Chrome DevTools Protocol access to a page's dedicated workers, for benchmarks: the JS heap of the import
 * worker (Runtime.getHeapUsage) and CPU profiles (Profiler) are per V8 isolate, and a worker has its own.
 * Playwright opens CDP sessions on pages only, so this asks the page's session to auto-attach to its
 * workers unflattened and talks to each through Target.sendMessageToTarget.
 */
export interface WorkerTarget {
  url: string;
  send<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>;
}

export interface WorkerCdp {
  /** The first attached worker whose script URL contains `part`, waiting for it to start. */
  worker(part: string, timeoutMs?: number): Promise<WorkerTarget>;
  detach(): Promise<void>;
}

interface Attached {
  sessionId: string;
  targetInfo: { type: string; url: string };
}

export async function attachWorkers(page: Page): Promise<WorkerCdp> {
  const session: CDPSession = await page.context().newCDPSession(page);
  const targets: WorkerTarget[] = [];
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  session.on("Target.attachedToTarget", (event: Attached) => {
    if (event.targetInfo.type !== "worker") return;
    const { sessionId } = event;
    targets.push({
      url: event.targetInfo.url,
      send<T>(method: string, params: Record<string, unknown> = {}) {
        const id = nextId++;
        return new Promise<T>((resolve, reject) => {
          pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
          session
            .send("Target.sendMessageToTarget", {
              sessionId,
              message: JSON.stringify({ id, method, params }),
            })
            .catch(reject);
        });
      },
    });
  });
  session.on("Target.receivedMessageFromTarget", (event: { message: string }) => {
    const message = JSON.parse(event.message) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    };
    if (message.id === undefined) return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  await session.send("Target.setAutoAttach", {
    autoAttach: true,
    waitForDebuggerOnStart: false,
    flatten: false,
  });
  return {
    async worker(part, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = targets.find((t) => t.url.includes(part));
        if (found) return found;
        if (Date.now() > until) {
          throw new Error(
            `No worker with "${part}" in its URL within ${timeoutMs} ms; saw ${targets.map((t) => t.url).join(", ") || "none"}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async detach() {
      await session.detach().catch(() => undefined);
    },
  };
}
