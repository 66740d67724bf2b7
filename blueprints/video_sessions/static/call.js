// PAWMANITY call page. The doctor makes the offer whenever the patient (re)joins; the patient answers.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const call = { token: null, me: null, sessionId: null, socket: null, pc: null, stream: null, ice: [] };
  window.pawmanityCall = call;  // tests read call.pc.connectionState

  async function api(path, options = {}) {
    const response = await fetch("/api/v1" + path, { ...options, headers: {
      "Content-Type": "application/json", ...(call.token ? { Authorization: "Bearer " + call.token } : {}) } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || response.statusText);
    return body;
  }

  function setState(text) { $("state").textContent = text; }

  function newPeerConnection() {
    if (call.pc) call.pc.close();
    const pc = new RTCPeerConnection({ iceServers: call.ice });
    call.stream.getTracks().forEach((track) => pc.addTrack(track, call.stream));
    pc.onicecandidate = (event) => {
      if (event.candidate) signal("ice", event.candidate.toJSON());
    };
    pc.ontrack = (event) => { $("remote").srcObject = event.streams[0]; };
    pc.onconnectionstatechange = () => setState(pc.connectionState);
    call.pc = pc;
    return pc;
  }

  function signal(type, data) {
    call.socket.emit("signal", { session_id: call.sessionId, type, data });
  }

  async function offer() {
    const pc = newPeerConnection();
    await pc.setLocalDescription(await pc.createOffer());
    signal("offer", { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
  }

  async function onSignal(message) {
    if (message.type === "offer") {
      const pc = newPeerConnection();
      await pc.setRemoteDescription(message.data);
      await pc.setLocalDescription(await pc.createAnswer());
      signal("answer", { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
    } else if (message.type === "answer" && call.pc) {
      await call.pc.setRemoteDescription(message.data);
    } else if (message.type === "ice" && call.pc) {
      try { await call.pc.addIceCandidate(message.data); } catch (error) { /* a candidate of an older connection */ }
    }
  }

  async function joinCall() {
    const grant = await api("/video-sessions/" + call.sessionId + "/join", { method: "POST" });
    call.ice = grant.ice_servers;
    call.socket.emit("join", { session_id: call.sessionId, join_token: grant.join_token }, (ack) => {
      if (ack.error) { $("error").textContent = ack.error.detail; return; }
      setState("joined");
      // The doctor calls the patient; if the patient is already waiting, the patient's join makes no event here,
      // so the doctor offers straight away too (a second offer simply replaces the first).
      if (call.me.role === "doctor") offer();
    });
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const tokens = await api("/auth/login", { method: "POST",
        body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
      call.token = tokens.access_token;
      call.me = await api("/auth/me");
      call.sessionId = $("session").value;
      call.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      $("local").srcObject = call.stream;
      $("login").hidden = true;
      $("call").hidden = false;
      call.socket = io("/video", { auth: { token: call.token }, transports: ["websocket"] });
      call.socket.on("connect", joinCall);
      call.socket.on("signal", onSignal);
      call.socket.on("peer_joined", () => { if (call.me.role === "doctor") offer(); });
      call.socket.on("peer_left", () => setState("peer left"));
      call.socket.on("ended", () => { setState("ended"); if (call.pc) call.pc.close(); });
    } catch (error) {
      $("error").textContent = error.message;
    }
  });
})();
