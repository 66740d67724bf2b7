"""The /video namespace: WebRTC signalling between the two participants of a session, nothing more."""

from flask import request, session
from flask_socketio import emit, join_room, leave_room

from blueprints.video_sessions.schemas import (
    PeerEvent,
    SignalEvent,
    SignalIn,
    SocketJoinIn,
    VideoEndedEvent,
    VideoJoinAck,
    VideoOkAck,
)
from pawmanity.conversations import video
from pawmanity.core.errors import NotFound
from pawmanity.core.live import ClientEvent, ServerEvent
from pawmanity.identity.sockets import AuthenticatedNamespace, acknowledged, socket_actor


class VideoNamespace(AuthenticatedNamespace):
    channel_description = ("WebRTC signalling between the two participants of a video session. Get a join token "
                           "from POST /video-sessions/{id}/join, `join` with it, then relay offers, answers and "
                           "ICE candidates with `signal`; the media flow peer to peer.")
    client_events = {
        "join": ClientEvent(SocketJoinIn, VideoJoinAck, "Enter a session's call with a single-use join token."),
        "signal": ClientEvent(SignalIn, VideoOkAck, "Relay an offer, an answer or an ICE candidate to the other "
                                                    "participant."),
    }
    server_events = {
        "peer_joined": ServerEvent(PeerEvent, "The other participant joined (the doctor then makes an offer)."),
        "peer_left": ServerEvent(PeerEvent, "The other participant left (closed the page or lost the socket)."),
        "signal": ServerEvent(SignalEvent, "An offer, answer or ICE candidate from the other participant."),
        "ended": ServerEvent(VideoEndedEvent, "The doctor ended the session (or its appointment is over)."),
    }

    @acknowledged
    def on_join(self, data):
        fields = SocketJoinIn().load(data)
        actor = socket_actor()
        call = video.redeem(actor, fields["session_id"], fields["join_token"])
        room = video.room_of(call.id)
        join_room(room)
        session.setdefault("video_sessions", []).append(str(call.id))
        emit("peer_joined", {"session_id": str(call.id), "user_id": str(actor.user_id)}, to=room,
             skip_sid=request.sid)
        return {"ok": True, "session_id": str(call.id)}

    @acknowledged
    def on_signal(self, data):
        fields = SignalIn().load(data)
        session_id = str(fields["session_id"])
        if session_id not in session.get("video_sessions", []):
            raise NotFound("Join the session before signalling in it.", code="not_joined")
        video.check_signal(fields["type"], fields["data"])
        video.check_open(session_id)
        # Relayed to the other participant only, never back to the sender.
        emit("signal", {"session_id": session_id, "from": session["user_id"], "type": fields["type"],
                        "data": fields["data"]}, to=video.room_of(session_id), skip_sid=request.sid)
        return {"ok": True}

    def on_disconnect(self, reason=None):
        super().on_disconnect(reason)
        for session_id in session.get("video_sessions", []):
            emit("peer_left", {"session_id": session_id, "user_id": session["user_id"]},
                 to=video.room_of(session_id), skip_sid=request.sid)
            leave_room(video.room_of(session_id))
            video.left(session_id, session["user_id"])
