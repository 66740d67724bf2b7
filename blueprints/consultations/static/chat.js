// PAWMANITY chat page: sign in over REST, then chat over Socket.IO (/chat) with typing, read receipts and
// attachments. The access token is refreshed before it expires (session.js).
(function () {
  "use strict";
  const session = window.pawmanitySession;
  const state = { socket: null, current: null, consultations: {}, lastMessageId: null };
  const $ = (id) => document.getElementById(id);
  const showError = (message) => { $("chat-error").textContent = message; };
  session.onError = showError;

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const me = await session.signIn($("email").value, $("password").value);
      $("who").textContent = me.full_name;
      $("login").hidden = true;
      $("app").hidden = false;
      connect();
      await listConsultations();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });

  function connect() {
    state.socket = session.socket("/chat");
    state.socket.on("connect", () => { showError(""); if (state.current) join(state.current, true); });
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
      if (event.consultation_id !== state.current || event.user_id === session.me.id) return;
      document.querySelectorAll("#messages li.mine").forEach((item) => {
        if (Number(item.dataset.seq) <= event.seq) item.querySelector(".status").textContent = "read";
      });
    });
    state.socket.on("ended", (event) => {
      if (event.consultation_id === state.current) showError("The consultation has ended.");
    });
    state.socket.on("error", (error) => showError(error.detail));
  }

  // "Biscuit with Dr. Elena Rivera": who it is about and with, for either side of the conversation.
  function titleOf(consultation) {
    return consultation.patient_name + " with " + consultation.doctor_name;
  }

  function timeElement(iso, options) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = session.localTime(iso, options);
    return time;
  }

  async function listConsultations() {
    const page = await session.api("/consultations?active=true&per_page=100");
    const list = $("consultations");
    list.replaceChildren();
    if (!page.items.length) {
      const empty = document.createElement("li");
      empty.textContent = "No open consultations.";
      list.append(empty);
    }
    for (const consultation of page.items) {
      state.consultations[consultation.id] = consultation;
      const item = document.createElement("li");
      const button = document.createElement("button");
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = titleOf(consultation);
      const started = document.createElement("span");
      started.className = "started";
      started.append("started ", timeElement(consultation.started_at, { withDate: true }));
      button.append(title, started);
      button.dataset.id = consultation.id;
      button.addEventListener("click", () => join(consultation.id, false));
      item.append(button);
      list.append(item);
    }
  }

  function join(consultationId, rejoining) {
    state.socket.emit("join", { consultation_id: consultationId }, async (ack) => {
      if (ack.error) { showError(ack.error.detail); return; }
      document.querySelectorAll("#consultations button").forEach((b) => b.classList.toggle("current", b.dataset.id === consultationId));
      if (!rejoining || state.current !== consultationId) { $("messages").replaceChildren(); state.lastMessageId = null; }
      state.current = consultationId;
      $("conversation-title").textContent = titleOf(state.consultations[consultationId]);
      $("conversation").hidden = false;
      // Catch up on anything missed while away, then mark it read.
      try {
        const after = state.lastMessageId ? "&after=" + state.lastMessageId : "";
        const missed = (await session.api("/consultations/" + consultationId + "/messages?per_page=500" + after)).items;
        missed.forEach(show);
        if (missed.length) state.socket.emit("read", { consultation_id: consultationId, message_id: missed[missed.length - 1].id });
      } catch (error) {
        showError(error.message);
      }
    });
  }

  function senderName(message) {
    const consultation = state.consultations[message.consultation_id];
    if (message.sender_id === session.me.id) return "You";
    if (consultation && message.sender_id === consultation.doctor_user_id) return consultation.doctor_name;
    return consultation ? consultation.patient_name : "";
  }

  function show(message) {
    if (document.querySelector('#messages li[data-id="' + message.id + '"]')) return;
    const item = document.createElement("li");
    item.dataset.id = message.id;
    item.dataset.seq = message.seq;
    const mine = message.sender_id === session.me.id;
    item.className = mine ? "mine" : "theirs";
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = senderName(message);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.body;
    item.append(sender, text);
    if (message.attachment_ids.length) item.append(attachments(message.attachment_ids));
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.append(timeElement(message.created_at), mine ? " · " : "");
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = mine ? "sent" : "";
    meta.append(status);
    item.append(meta);
    $("messages").append(item);
    state.lastMessageId = message.id;
  }

  // Each attachment by its file name; a click fetches it with the access token and opens it.
  function attachments(ids) {
    const list = document.createElement("ul");
    list.className = "attachments";
    for (const id of ids) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "#";
      link.dataset.id = id;
      link.textContent = "attachment";
      session.api("/uploads/" + id).then((upload) => {
        link.textContent = upload.filename + " (" + Math.ceil(upload.size / 1024) + " KB)";
        link.dataset.filename = upload.filename;
      }).catch((error) => { link.textContent = "attachment unavailable (" + error.message + ")"; });
      link.addEventListener("click", async (event) => {
        event.preventDefault();
        try {
          const url = URL.createObjectURL(await session.blob("/uploads/" + id + "/content"));
          const download = document.createElement("a");
          download.href = url;
          download.download = link.dataset.filename || "attachment";
          download.click();
          setTimeout(() => URL.revokeObjectURL(url), 60000);
        } catch (error) {
          showError(error.message);
        }
      });
      item.append(link);
      list.append(item);
    }
    return list;
  }

  $("body").addEventListener("input", () => {
    if (state.current) state.socket.emit("typing", { consultation_id: state.current });
  });

  async function uploadChosenFile() {
    const file = $("file").files[0];
    if (!file) return [];
    const form = new FormData();
    form.append("file", file);
    form.append("patient_id", state.consultations[state.current].patient_id);
    form.append("consultation_id", state.current);
    const upload = await session.api("/uploads", { method: "POST", body: form });
    return [upload.id];
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = $("body").value;
    const clientId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^A-Za-z0-9_.:-]/g, "");
    let attachmentIds;
    try {
      attachmentIds = await uploadChosenFile();
    } catch (error) {
      showError("The file was not sent: " + error.message);
      return;
    }
    state.socket.emit("message", { consultation_id: state.current, body, client_id: clientId, attachment_ids: attachmentIds }, (ack) => {
      if (ack.error) { showError(ack.error.detail); return; }
      showError("");
      $("body").value = "";
      $("file").value = "";
      show(ack.message);
    });
  });
})();
