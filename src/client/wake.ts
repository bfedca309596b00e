/**
 * Waits for the network the way a laptop needs: after sleep, a closed lid or a dropped Wi-Fi the loop's
 * requests fail, and it waits before trying again. Coming back online, or the page becoming visible again
 * (the computer woke, the clinician brought the tab back), ends the wait at once.
 */

const page = typeof window !== "undefined" && typeof document !== "undefined";

/** Sleeps `ms`, or less when the page comes back online or becomes visible; rejects on abort. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(new DOMException("Left the federation.", "AbortError"));
    const cleanUp = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (page) {
        window.removeEventListener("online", done);
        document.removeEventListener("visibilitychange", onVisible);
      }
    };
    const done = () => {
      cleanUp();
      resolve();
    };
    const onAbort = () => {
      cleanUp();
      reject(new DOMException("Left the federation.", "AbortError"));
    };
    const onVisible = () => {
      if (document.visibilityState === "visible") done();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", onAbort, { once: true });
    if (page) {
      window.addEventListener("online", done);
      document.addEventListener("visibilitychange", onVisible);
    }
  });
}

/** True when the browser knows it has no network: a wait then does not count as a failed attempt. */
export function offline(): boolean {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}
