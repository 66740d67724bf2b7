// The Web Push service worker: shows a pushed notification (generic text only) and opens the chat page on a click.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {};
  }
  event.waitUntil(self.registration.showNotification(message.title || "PAWMANITY", {
    body: message.body || "You have a new notification.",
    tag: message.notification_id || undefined,
    data: { notificationId: message.notification_id || null },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    const chat = windows.find((client) => new URL(client.url).pathname === "/chat");
    return chat ? chat.focus() : self.clients.openWindow("/chat");
  }));
});
