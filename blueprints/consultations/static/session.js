// PAWMANITY pages' sign-in: REST calls with the access token, refreshed before it expires, and Socket.IO sockets
// kept on the fresh token (`reauth`), or reconnected with it when the server ended their session.
// Shared by the chat page (/chat) and the call page (/video).
(function () {
  "use strict";
  const REFRESH_MARGIN_SECONDS = 60;  // refresh this long before the access token expires
  const session = {
    token: null, refreshToken: null, me: null, sockets: [], nextRefreshAt: null, lastReauth: null,
    onError: (message) => console.error(message),
  };
  window.pawmanitySession = session;  // tests look at token, nextRefreshAt and lastReauth

  class ApiError extends Error {
    constructor(body, response) {
      super(body && body.detail ? body.detail : response.statusText);
      this.status = response.status;
      this.code = body && body.code;
    }
  }

  async function request(path, options = {}, token = session.token) {
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = "Bearer " + token;
    if (options.body && !(options.body instanceof FormData)) headers["Content-Type"] = "application/json";
    const response = await fetch("/api/v1" + path, { ...options, headers });
    const isJson = (response.headers.get("Content-Type") || "").includes("json");
    const body = response.status === 204 || !isJson ? null : await response.json();
    if (!response.ok) throw new ApiError(body, response);
    return options.raw ? response : body;
  }

  session.api = (path, options) => request(path, options);
  session.blob = async (path) => (await request(path, { raw: true })).blob();

  function keep(tokens) {
    session.token = tokens.access_token;
    session.refreshToken = tokens.refresh_token;
    clearTimeout(session.refreshTimer);
    const delay = Math.max(5, tokens.expires_in - REFRESH_MARGIN_SECONDS);
    session.nextRefreshAt = Date.now() + delay * 1000;
    session.refreshTimer = setTimeout(() => session.refresh().catch(() => {}), delay * 1000);
    // push.js (Web Push) and any other script on the page follow the current access token.
    window.dispatchEvent(new CustomEvent("pawmanity:signed-in", { detail: { token: session.token } }));
  }

  session.signIn = async (email, password) => {
    keep(await request("/auth/login", { method: "POST", body: JSON.stringify({ email, password }) }, null));
    session.me = await request("/auth/me");
    return session.me;
  };

  // A new access token (the refresh token rotates too); every open socket is carried over to it.
  session.refresh = async () => {
    try {
      keep(await request("/auth/refresh", { method: "POST" }, session.refreshToken));
    } catch (error) {
      session.onError("Your session has ended (" + (error.code || error.message) + "); sign in again.");
      throw error;
    }
    for (const socket of session.sockets) {
      socket.auth.token = session.token;  // for the next reconnect
      if (!socket.connected) continue;
      socket.emit("reauth", { token: session.token }, (ack) => {
        session.lastReauth = ack;
        if (ack.error) session.onError("Could not renew the live connection: " + ack.error.detail);
      });
    }
    return session.token;
  };

  // Open a Socket.IO connection that follows the session's token.
  session.socket = (namespace) => {
    const socket = io(namespace, { auth: { token: session.token }, transports: ["websocket"] });
    session.sockets.push(socket);
    socket.on("connect_error", async (error) => {
      const code = error.data && error.data.code ? error.data.code : error.message;
      if (code === "token_expired") {  // asleep past the refresh (a closed laptop): refresh, then try again
        await session.refresh();
        socket.connect();
        return;
      }
      session.onError("Connection refused (" + code + "): " + (error.data ? error.data.detail : error.message));
    });
    socket.on("session_ended", async (event) => {
      if (event.code !== "token_expired") { session.onError("Your session has ended; sign in again."); return; }
      await session.refresh();
      socket.connect();
    });
    return socket;
  };

  // Times in the viewer's own time zone: "14:05", or "Nov 30 14:05" when not today.
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const dateFormat = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric" });
  session.localTime = (iso, { withDate = false } = {}) => {
    const moment = new Date(iso);
    const today = new Date().toDateString() === moment.toDateString();
    return (withDate || !today ? dateFormat.format(moment) + " " : "") + timeFormat.format(moment);
  };
})();
