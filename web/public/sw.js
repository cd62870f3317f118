/*
 * Herald's service worker: shows browser push notifications and opens their
 * link on click. The payload is the JSON that src/channels/push.ts sends:
 * { title, body, url, icon, tag, notificationId, notificationIds, type, priority, count }.
 * Plain JavaScript, copied as is to web/dist/sw.js and served at /sw.js so its
 * scope is the whole site.
 */
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    // Not JSON: show the text itself rather than nothing (userVisibleOnly requires a notification).
    data = { body: event.data ? event.data.text() : "" };
  }
  const options = {
    body: data.body || "",
    tag: data.tag || undefined,
    icon: data.icon || undefined,
    // Urgent notifications stay on screen until the user acts on them.
    requireInteraction: data.priority === "critical" || data.priority === "high",
    data: { url: data.url || "/", notificationId: data.notificationId || null },
  };
  event.waitUntil(self.registration.showNotification(data.title || "Herald", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", self.location.origin).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      // Reuse a tab already showing the link; otherwise open one.
      const open = windows.find((w) => w.url === target);
      if (open) return open.focus();
      return self.clients.openWindow(target);
    })(),
  );
});
