// Web Push on the chat page: a button offers to notify this browser. Kept apart from chat.js, which announces each
// sign-in with a `pawmanity:signed-in` event ({detail: {token}}). The service worker (/push/sw.js) shows what the
// server pushes: generic text and a notification id, never details.
(function () {
  "use strict";
  const button = document.getElementById("push-toggle");
  const status = document.getElementById("push-status");
  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  let token = null;

  if (!button || !supported) return;

  async function api(path, options = {}) {
    const response = await fetch("/api/v1" + path, {
      ...options,
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || response.statusText);
    }
    return response.status === 204 ? null : response.json();
  }

  function keyBytes(base64url) {
    const base64 = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  }

  const registration = () => navigator.serviceWorker.register("/push/sw.js", { scope: "/push/" });

  async function show() {
    const subscription = await (await registration()).pushManager.getSubscription();
    button.hidden = false;
    button.textContent = subscription ? "Stop notifications" : "Notify me in this browser";
    button.dataset.subscribed = subscription ? "yes" : "";
  }

  async function subscribe() {
    if ((await Notification.requestPermission()) !== "granted") {
      status.textContent = "Notifications are blocked for this site.";
      return;
    }
    const { public_key: key } = await api("/notifications/push/key");
    const reg = await registration();
    const subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    await api("/notifications/push/subscriptions", { method: "POST", body: JSON.stringify(subscription.toJSON()) });
    status.textContent = "This browser will be notified.";
  }

  async function unsubscribe() {
    const subscription = await (await registration()).pushManager.getSubscription();
    if (!subscription) return;
    const mine = await api("/notifications/push/subscriptions?per_page=100");
    const stored = mine.items.find((item) => item.endpoint === subscription.endpoint);
    if (stored) await api("/notifications/push/subscriptions/" + stored.id, { method: "DELETE" });
    await subscription.unsubscribe();
    status.textContent = "Notifications are off for this browser.";
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await (button.dataset.subscribed ? unsubscribe() : subscribe());
    } catch (error) {
      status.textContent = "Notifications: " + error.message;
    } finally {
      button.disabled = false;
      await show().catch(() => {});
    }
  });

  window.addEventListener("pawmanity:signed-in", (event) => {
    token = event.detail.token;
    show().catch(() => {});
  });
})();
