// PAWMANITY call page: sign in, pick one of your video sessions, call. The doctor makes the offer whenever the
// patient (re)joins; the patient answers. Mute, camera off, hang up (and, for the doctor, end the session).
(function () {
  "use strict";
  const session = window.pawmanitySession;
  const $ = (id) => document.getElementById(id);
  const call = { sessionId: null, socket: null, pc: null, stream: null, ice: [], sessions: {} };
  window.pawmanityCall = call;  // tests read call.pc.connectionState

  const showError = (message) => { $("error").textContent = message; };
  session.onError = showError;
  function setState(text) { $("state").textContent = text; }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const me = await session.signIn($("email").value, $("password").value);
      $("who").textContent = me.full_name;
      $("login").hidden = true;
      $("picker").hidden = false;
      await listSessions();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });

  function titleOf(video) {
    return video.patient_name + " with " + video.doctor_name;
  }

  async function listSessions() {
    const page = await session.api("/video-sessions?per_page=100");
    const list = $("sessions");
    list.replaceChildren();
    if (!page.items.length) {
      const empty = document.createElement("li");
      empty.textContent = "You have no video sessions. A doctor opens one for a confirmed video appointment.";
      list.append(empty);
    }
    // Open sessions first, soonest first; ended ones after them, for the record.
    page.items.sort((a, b) => (a.status !== b.status ? (a.status === "open" ? -1 : 1) : a.starts_at.localeCompare(b.starts_at)));
    for (const video of page.items) {
      call.sessions[video.id] = video;
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.id = video.id;
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = titleOf(video);
      const when = document.createElement("span");
      when.className = "started";
      const time = document.createElement("time");
      time.dateTime = video.starts_at;
      time.textContent = session.localTime(video.starts_at, { withDate: true });
      when.append(time, " · " + video.status);
      button.append(title, when);
      button.disabled = video.status !== "open";
      button.addEventListener("click", () => enter(video.id));
      item.append(button);
      list.append(item);
    }
  }

  async function enter(sessionId) {
    showError("");
    call.sessionId = sessionId;
    try {
      call.stream = call.stream || await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (error) {
      showError("No camera or microphone: " + error.message);
      return;
    }
    $("local").srcObject = call.stream;
    $("call-title").textContent = titleOf(call.sessions[sessionId]);
    $("end").hidden = session.me.role !== "doctor";
    $("picker").hidden = true;
    $("call").hidden = false;
    call.socket = session.socket("/video");
    call.socket.on("connect", joinCall);
    call.socket.on("signal", onSignal);
    call.socket.on("peer_joined", () => { setState("peer joined"); if (session.me.role === "doctor") offer(); });
    call.socket.on("peer_left", () => setState("peer left"));
    call.socket.on("ended", () => { setState("ended"); leave(); showError("The call has ended."); });
  }

  async function joinCall() {
    let grant;
    try {
      grant = await session.api("/video-sessions/" + call.sessionId + "/join", { method: "POST" });
    } catch (error) {
      showError(error.message);
      leave();
      return;
    }
    call.ice = grant.ice_servers;
    call.socket.emit("join", { session_id: call.sessionId, join_token: grant.join_token }, (ack) => {
      if (ack.error) { showError(ack.error.detail); leave(); return; }
      setState("joined");
      // The doctor calls the patient; if the patient is already waiting, the patient's join makes no event here,
      // so the doctor offers straight away too (a second offer simply replaces the first).
      if (session.me.role === "doctor") offer();
    });
  }

  // Each offer starts a new negotiation, numbered: answers and ICE candidates carry the number of the offer they
  // belong to, so one that arrives late from an earlier negotiation (a peer joined mid-offer) is ignored.
  function newPeerConnection(generation) {
    if (call.pc) call.pc.close();
    const pc = new RTCPeerConnection({ iceServers: call.ice });
    pc.generation = generation;
    call.stream.getTracks().forEach((track) => pc.addTrack(track, call.stream));
    pc.onicecandidate = (event) => {
      if (event.candidate && call.pc === pc) signal("ice", { ...event.candidate.toJSON(), generation });
    };
    pc.ontrack = (event) => { $("remote").srcObject = event.streams[0]; };
    pc.onconnectionstatechange = () => { if (call.pc === pc) setState(pc.connectionState); };
    call.pc = pc;
    return pc;
  }

  function signal(type, data) {
    if (!call.socket) return;
    call.socket.emit("signal", { session_id: call.sessionId, type, data }, (ack) => {
      if (ack && ack.error) showError(ack.error.detail);
    });
  }

  // An offer that got nowhere (lost, or sent before the patient was listening) is made again.
  const OFFER_RETRY_MS = 15000;

  async function offer() {
    call.generation = (call.generation || 0) + 1;
    const pc = newPeerConnection(call.generation);
    clearTimeout(call.retryTimer);
    call.retryTimer = setTimeout(() => {
      if (call.socket && call.pc === pc && ["new", "failed"].includes(pc.connectionState)) offer();
    }, OFFER_RETRY_MS);
    try {
      const description = await pc.createOffer();
      if (call.pc !== pc) return;  // a newer offer replaced this one meanwhile
      await pc.setLocalDescription(description);
      signal("offer", { type: description.type, sdp: description.sdp, generation: pc.generation });
    } catch (error) {
      if (call.pc === pc) showError("Could not start the call: " + error.message);
    }
  }

  async function onSignal(message) {
    const data = message.data;
    if (message.type === "offer") {
      const pc = newPeerConnection(data.generation);
      try {
        await pc.setRemoteDescription({ type: data.type, sdp: data.sdp });
        const answer = await pc.createAnswer();
        if (call.pc !== pc) return;
        await pc.setLocalDescription(answer);
        signal("answer", { type: answer.type, sdp: answer.sdp, generation: pc.generation });
      } catch (error) {
        if (call.pc === pc) showError("Could not answer the call: " + error.message);
      }
    } else if (message.type === "answer" && call.pc && call.pc.generation === data.generation
               && call.pc.signalingState === "have-local-offer") {
      await call.pc.setRemoteDescription({ type: data.type, sdp: data.sdp });
    } else if (message.type === "ice" && call.pc && call.pc.generation === data.generation) {
      const { generation, ...candidate } = data;
      try { await call.pc.addIceCandidate(candidate); } catch (error) { /* the connection closed meanwhile */ }
    }
  }

  // Back to the list: the peer connection, the socket (the other side hears `peer_left`) and the camera go.
  function leave() {
    clearTimeout(call.retryTimer);
    if (call.pc) { call.pc.close(); call.pc = null; }
    if (call.socket) {
      session.sockets = session.sockets.filter((socket) => socket !== call.socket);
      call.socket.disconnect();
      call.socket = null;
    }
    if (call.stream) { call.stream.getTracks().forEach((track) => track.stop()); call.stream = null; }
    $("remote").srcObject = null;
    $("call").hidden = true;
    $("picker").hidden = false;
    setMuted(false);
    $("camera").textContent = "Camera off";
    $("camera").setAttribute("aria-pressed", "false");
    listSessions().catch((error) => showError(error.message));
  }

  function setMuted(muted) {
    if (call.stream) call.stream.getAudioTracks().forEach((track) => { track.enabled = !muted; });
    $("mute").textContent = muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(muted));
  }

  $("mute").addEventListener("click", () => setMuted($("mute").getAttribute("aria-pressed") !== "true"));
  $("camera").addEventListener("click", () => {
    const off = $("camera").getAttribute("aria-pressed") !== "true";
    if (call.stream) call.stream.getVideoTracks().forEach((track) => { track.enabled = !off; });
    $("camera").textContent = off ? "Camera on" : "Camera off";
    $("camera").setAttribute("aria-pressed", String(off));
  });
  $("hangup").addEventListener("click", () => { setState("left"); leave(); });
  $("end").addEventListener("click", async () => {
    try {
      await session.api("/video-sessions/" + call.sessionId + "/end", { method: "POST" });
    } catch (error) {
      showError(error.message);
    }
  });
})();
