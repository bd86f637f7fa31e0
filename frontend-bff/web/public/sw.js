// Bourse service worker: caches the app shell (index.html, hashed assets, icons) so the app
// opens offline, and never API data: /graphql (HTTP or websocket) always goes to the network.
// Web Push: the push and notificationclick handlers at the end.
const SHELL = "bourse-shell-v1";
const SHELL_URLS = ["/", "/manifest.webmanifest", "/icons/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_URLS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.pathname.startsWith("/assets/") || url.pathname.startsWith("/icons/") || url.pathname === "/manifest.webmanifest";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/graphql") || url.pathname.startsWith("/console") || url.pathname.startsWith("/healthz") || url.pathname.startsWith("/readyz")) return;
  if (request.mode === "navigate") {
    // Network first for pages (fresh index.html after a deploy), the cached shell offline.
    event.respondWith(
      fetch(request).then((response) => {
        const copy = response.clone();
        if (response.ok) caches.open(SHELL).then((cache) => cache.put("/", copy));
        return response;
      }).catch(() => caches.match("/")),
    );
    return;
  }
  if (isShell(url)) {
    // Hashed, immutable files: cache first.
    event.respondWith(
      caches.match(request).then((hit) => hit || fetch(request).then((response) => {
        const copy = response.clone();
        if (response.ok) caches.open(SHELL).then((cache) => cache.put(request, copy));
        return response;
      })),
    );
  }
});

// Web Push (notifications): the payload is the notification as the server sent it
// (workers/notifications.py): {id, kind, title, body, assetId, orderId}. The tag is the
// notification's id, so a push delivered twice shows once.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "Bourse", body: event.data ? event.data.text() : "" };
  }
  const url = data.assetId ? `/asset/${encodeURIComponent(data.assetId)}` : "/notifications";
  event.waitUntil(
    self.registration.showNotification(data.title || "Bourse", {
      body: data.body || "",
      tag: data.id || undefined,
      icon: "/icons/icon-192.png",
      data: { url },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/notifications";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const w of windows) {
        if ("focus" in w) {
          w.navigate(url);
          return w.focus();
        }
      }
      return self.clients.openWindow(url);
    }),
  );
});
