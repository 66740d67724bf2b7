"""The /chat namespace: join a consultation's room, send messages, typing indicators and read receipts."""

from flask import request

from blueprints.consultations.schemas import (
    ChatJoinAck,
    ChatMessageAck,
    ChatOkAck,
    ChatReadAck,
    ConsultationEndedEvent,
    ConsultationRef,
    MessageOut,
    ReadEvent,
    ReadIn,
    SocketMessageIn,
    TypingEvent,
)
from pawmanity.conversations import consultations, messaging
from pawmanity.core import live, ratelimits
from pawmanity.core.live import ClientEvent, ServerEvent
from pawmanity.identity.sockets import AuthenticatedNamespace, acknowledged, socket_actor


class ChatNamespace(AuthenticatedNamespace):
    channel_description = ("Live chat in consultations. Events reach every participant's sockets (the doctor and "
                           "the patient's guardians); `join` a consultation to check it is yours, then catch up "
                           "over REST (GET /consultations/{id}/messages?after=<last message id>).")
    client_events = {
        "join": ClientEvent(ConsultationRef, ChatJoinAck, "Check that a consultation is yours; where it stands."),
        "leave": ClientEvent(ConsultationRef, ChatOkAck, "Leave a consultation's conversation."),
        "message": ClientEvent(SocketMessageIn, ChatMessageAck, "Send a message; the same client_id again returns "
                                                                 "the stored message instead of a copy."),
        "typing": ClientEvent(ConsultationRef, ChatOkAck, "Tell the other participants you are typing."),
        "read": ClientEvent(ReadIn, ChatReadAck, "Mark messages read up to and including message_id."),
    }
    server_events = {
        "message": ServerEvent(MessageOut, "A new message, the same as GET /consultations/{id}/messages gives."),
        "typing": ServerEvent(TypingEvent, "Another participant is typing."),
        "read": ServerEvent(ReadEvent, "Another participant read up to a message."),
        "ended": ServerEvent(ConsultationEndedEvent, "The consultation was ended; no more messages."),
    }

    # Events reach participants through their own user rooms (joined at connect), decided per event from the
    # database; `join` checks that a consultation is yours and returns where it stands.
    @acknowledged
    def on_join(self, data):
        consultation = consultations.visible(socket_actor(), ConsultationRef().load(data)["consultation_id"])
        return {"ok": True, "active": consultation.active, "message_count": consultation.message_count}

    @acknowledged
    def on_leave(self, data):
        ConsultationRef().load(data)
        return {"ok": True}

    @acknowledged
    def on_message(self, data):
        fields = SocketMessageIn().load(data)
        message, created = messaging.post_message(
            socket_actor(), fields["consultation_id"], body=fields["body"], client_id=fields["client_id"],
            attachment_ids=fields["attachment_ids"], skip_sid=request.sid)
        return {"ok": True, "created": created, "message": messaging.serialize(message)}

    @acknowledged
    def on_typing(self, data):
        actor = socket_actor()
        consultation, participants = consultations.visible_with_participants(
            actor, ConsultationRef().load(data)["consultation_id"])
        ratelimits.spend("typing", actor.user_id)  # each one fans out to every participant's sockets
        live.emit_to_users("typing", {"consultation_id": str(consultation.id), "user_id": str(actor.user_id)},
                           participants, namespace=live.CHAT, skip_sid=request.sid, after_commit=False)
        return {"ok": True}

    @acknowledged
    def on_read(self, data):
        fields = ReadIn().load(data)
        seq = messaging.mark_read(socket_actor(), fields["consultation_id"], fields["message_id"],
                                  skip_sid=request.sid)
        return {"ok": True, "seq": seq}
