import { h } from "./dom";

/**
 * Registers the service worker (workers/sw.ts, built to sw.js at the app's root) that keeps the app shell
 * for offline use. A new build installs in the background and waits: the page then offers to reload into
 * it, and never reloads by itself (a round may be training). Closing every tab of the app also brings the
 * new version on the next load. Skipped in `vite dev`, which has no sw.js and serves changing modules.
 */
export function registerServiceWorker(): void {
  if (import.meta.env.DEV || !("serviceWorker" in navigator)) return;
  const container = navigator.serviceWorker;
  let reloading = false;
  container.addEventListener("controllerchange", () => {
    // Only after the clinician chose to update: the first install also takes control of the page.
    if (reloading) location.reload();
  });
  const offer = (waiting: ServiceWorker) => {
    if (!container.controller || document.querySelector("[data-testid=update]")) return;
    const button = h(
      "button",
      {
        onclick: () => {
          reloading = true;
          waiting.postMessage({ type: "skip-waiting" });
        },
      },
      "Reload now",
    );
    document
      .querySelector("header")
      ?.append(
        h(
          "p",
          { class: "notice", role: "status", "data-testid": "update" },
          "A new version of fedward is available. ",
          button,
        ),
      );
  };
  container
    .register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL })
    .then((registration) => {
      if (registration.waiting) offer(registration.waiting);
      registration.addEventListener("updatefound", () => {
        const installing = registration.installing;
        installing?.addEventListener("statechange", () => {
          if (installing.state === "installed") offer(installing);
        });
      });
    })
    .catch((e: unknown) => {
      // The app still works online; only the offline copy is missing.
      console.warn(`The offline copy of fedward could not be set up: ${(e as Error).message}`);
    });
}
