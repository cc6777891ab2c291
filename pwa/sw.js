/* plugpay service worker.
 *
 * Served at /sw.js (scope "/"). The shell lives under /static/ (the pwa/ folder).
 * - install: caches the shell under a versioned name; bump VERSION when the
 *   list changes or a vendored file is replaced.
 * - pages (navigations): network first; with no network, the offline page.
 *   Pages are never stored: they hold live state and private session links.
 * - shell files: from the cache, refreshed in the background.
 * - never touched: non-GET requests, other origins, /api/, /webhooks/, /ocpp/,
 *   live event streams (/s/<id>/events or Accept: text/event-stream).
 * - push: shows {title, body, url, tag}; a click focuses or opens url.
 */
"use strict";

const VERSION = "plugpay-shell-v5";
const OFFLINE_URL = "/static/offline.html";
const SHELL = [
  OFFLINE_URL,
  "/static/css/app.css",
  "/static/js/app.js",
  "/static/js/htmx.min.js",
  "/static/js/ext/sse.js",
  "/static/icons/icon.svg",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/icons/icon-maskable-512.png",
  "/static/icons/apple-touch-icon.png",
  "/manifest.webmanifest",
];
const NEVER = /^\/(?:api|webhooks|ocpp)(?:\/|$)|^\/s\/[^/]+\/events\/?$|^\/sw\.js$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(VERSION)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names.filter((n) => n.startsWith("plugpay-") && n !== VERSION).map((n) => caches.delete(n))
      );
      if (self.registration.navigationPreload) {
        await self.registration.navigationPreload.enable();
      }
      await self.clients.claim();
    })()
  );
});

function isShell(url) {
  return url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest";
}

async function page(event) {
  try {
    const preloaded = await event.preloadResponse;
    if (preloaded) return preloaded;
    return await fetch(event.request);
  } catch (err) {
    const offline = await caches.match(OFFLINE_URL, { cacheName: VERSION });
    return offline || Response.error();
  }
}

async function shellFile(event) {
  const cache = await caches.open(VERSION);
  const cached = await cache.match(event.request);
  const fresh = fetch(event.request)
    .then((response) => {
      if (response.ok && response.type === "basic") {
        return cache.put(event.request, response.clone()).then(() => response);
      }
      return response;
    })
    .catch(() => undefined);
  if (cached) {
    event.waitUntil(fresh);
    return cached;
  }
  return (await fresh) || Response.error();
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || NEVER.test(url.pathname)) return;
  if ((request.headers.get("Accept") || "").includes("text/event-stream")) return;
  if (request.mode === "navigate") {
    event.respondWith(page(event));
  } else if (isShell(url)) {
    event.respondWith(shellFile(event));
  }
});

function sameOriginUrl(raw) {
  try {
    const url = new URL(raw || "/", self.location.origin);
    if (url.origin === self.location.origin) return url.href;
  } catch (err) {
    /* fall through */
  }
  return new URL("/", self.location.origin).href;
}

self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json() || {};
    } catch (err) {
      data = { body: event.data.text() };
    }
  }
  const options = {
    body: data.body || "",
    icon: "/static/icons/icon-192.png",
    data: { url: sameOriginUrl(data.url) },
  };
  if (data.tag) options.tag = String(data.tag);
  event.waitUntil(self.registration.showNotification(data.title || "plugpay", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || sameOriginUrl("/");
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (client.url === target && "focus" in client) return client.focus();
      }
      if (self.clients.openWindow) return self.clients.openWindow(target);
      return undefined;
    })()
  );
});
