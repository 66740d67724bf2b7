// PAWMANITY chat page: sign in over REST, then chat over Socket.IO (/chat) with typing and read receipts.
(function () {
  "use strict";
  const state = { token: null, me: null, socket: null, current: null, lastMessageId: null, readBy: {} };
  const $ = (id) => document.getElementById(id);

  async function api(path, options = {}) {
    const response = await fetch("/api/v1" + path, {
      ...options,
      headers: { "Content-Type": "application/json", ...(state.token ? { Authorization: "Bearer " + state.token } : {}) },
    });
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(body && body.detail ? body.detail : response.statusText);
    return body;
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const tokens = await api("/auth/login", {
        method: "POST", body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
      state.token = tokens.access_token;
      window.dispatchEvent(new CustomEvent("pawmanity:signed-in", { detail: { token: state.token } }));  // push.js
      state.me = await api("/auth/me");
      $("who").textContent = state.me.full_name;
      $("login").hidden = true;
      $("app").hidden = false;
      connect();
      await listConsultations();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });

  function connect() {
    state.socket = io("/chat", { auth: { token: state.token }, transports: ["websocket"] });
    state.socket.on("connect", () => { if (state.current) join(state.current, true); });
    state.socket.on("connect_error", (error) => { $("chat-error").textContent = "Connection refused: " + error.message; });
    state.socket.on("message", (message) => {
      if (message.consultation_id !== state.current) return;
      show(message);
      state.socket.emit("read", { consultation_id: state.current, message_id: message.id });
    });
    state.socket.on("typing", (event) => {
      if (event.consultation_id !== state.current) return;
      $("typing").textContent = "typing…";
      clearTimeout(state.typingTimer);
      state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 2000);
    });
    state.socket.on("read", (event) => {
      if (event.consultation_id !== state.current || event.user_id === state.me.id) return;
      document.querySelectorAll("#messages li.mine").forEach((item) => {
        if (Number(item.dataset.seq) <= event.seq) item.querySelector(".status").textContent = "read";
      });
    });
    state.socket.on("ended", () => { $("chat-error").textContent = "The consultation has ended."; });
    state.socket.on("error", (error) => { $("chat-error").textContent = error.detail; });
  }

  async function listConsultations() {
    const page = await api("/consultations?active=true");
    const list = $("consultations");
    list.replaceChildren();
    for (const consultation of page.items) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.textContent = "Consultation " + consultation.started_at.slice(0, 16).replace("T", " ");
      button.dataset.id = consultation.id;
      button.addEventListener("click", () => join(consultation.id, false));
      item.append(button);
      list.append(item);
    }
  }

  function join(consultationId, rejoining) {
    state.socket.emit("join", { consultation_id: consultationId }, async (ack) => {
      if (ack.error) { $("chat-error").textContent = ack.error.detail; return; }
      document.querySelectorAll("#consultations button").forEach((b) => b.classList.toggle("current", b.dataset.id === consultationId));
      if (!rejoining || state.current !== consultationId) { $("messages").replaceChildren(); state.lastMessageId = null; }
      state.current = consultationId;
      $("conversation").hidden = false;
      // Catch up on anything missed while away, then mark it read.
      const after = state.lastMessageId ? "?after=" + state.lastMessageId : "";
      const missed = (await api("/consultations/" + consultationId + "/messages" + after)).items;
      missed.forEach(show);
      if (missed.length) state.socket.emit("read", { consultation_id: consultationId, message_id: missed[missed.length - 1].id });
    });
  }

  function show(message) {
    if (document.querySelector('#messages li[data-id="' + message.id + '"]')) return;
    const item = document.createElement("li");
    item.dataset.id = message.id;
    item.dataset.seq = message.seq;
    const mine = message.sender_id === state.me.id;
    item.className = mine ? "mine" : "theirs";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.body;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = message.created_at.slice(11, 16) + (mine ? " · " : "");
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = mine ? "sent" : "";
    meta.append(status);
    item.append(text, meta);
    $("messages").append(item);
    state.lastMessageId = message.id;
  }

  $("body").addEventListener("input", () => {
    if (state.current) state.socket.emit("typing", { consultation_id: state.current });
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = $("body").value;
    const clientId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^A-Za-z0-9_.:-]/g, "");
    state.socket.emit("message", { consultation_id: state.current, body, client_id: clientId }, (ack) => {
      if (ack.error) { $("chat-error").textContent = ack.error.detail; return; }
      $("chat-error").textContent = "";
      $("body").value = "";
      show(ack.message);
    });
  });
})();
