/**
 * The service worker: keeps the app shell (index.html and every file the build emitted) in a cache named
 * after the build, so a site that loaded the app once opens it again with the network or the coordinator
 * down, and finds its enrolment, data, ledger and rounds in IndexedDB.
 *
 * It answers only same-origin GET requests for files of the build. The API (/api/*), anything
 * cross-origin and anything else pass through untouched and are never stored. A new build changes this
 * file's bytes (the manifest below), so the browser installs the new worker next to the old one; it waits
 * until the page asks it to take over (the "new version" banner, src/app/sw-register.ts) or until every tab
 * of the app is closed, then deletes the old build's cache.
 */

interface Manifest {
  /** A hash of the build's files: names the cache. */
  version: string;
  /** Paths relative to the app's root: index.html, assets/*, demo files. */
  files: string[];
}

// vite.config.ts (swManifest) writes the build's manifest over this placeholder after the bundle is written.
const manifest = JSON.parse("__FEDWARD_SW_MANIFEST__") as Manifest;
const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE_PREFIX = "fedward-shell-";
const cacheName = `${CACHE_PREFIX}${manifest.version}`;
const scope = new URL(sw.registration.scope);
const shellUrls = new Set(manifest.files.map((f) => new URL(f, scope).href));
const indexUrl = new URL("index.html", scope).href;
// Pages the app routes itself (main.ts): each is index.html.
const appPages = new Set([scope.href, new URL("admin", scope).href, indexUrl]);

sw.addEventListener("install", (event) => {
  // cache: "reload" skips the HTTP cache, so the shell is this build's files and not stale copies.
  event.waitUntil(
    caches
      .open(cacheName)
      .then((cache) => cache.addAll([...shellUrls].map((url) => new Request(url, { cache: "reload" })))),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== cacheName) await caches.delete(name);
      }
      // The first install takes the open page at once, so it works offline without a second load.
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("message", (event) => {
  if ((event.data as { type?: string } | null)?.type === "skip-waiting") void sw.skipWaiting();
});

sw.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== scope.origin || url.pathname.startsWith("/api/")) return;
  url.hash = "";
  // Invite links carry ?invite=…&coordinator=…: the page is still index.html.
  const page = request.mode === "navigate" && appPages.has(`${url.origin}${url.pathname}`);
  const key = page ? indexUrl : url.href;
  if (!shellUrls.has(key)) return;
  event.respondWith(
    caches
      .open(cacheName)
      .then((cache) => cache.match(key))
      .then((hit) => hit ?? fetch(request)),
  );
});

export type {};
