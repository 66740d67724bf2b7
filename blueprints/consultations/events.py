"""The /chat namespace: join a consultation's room, send messages, typing indicators and read receipts."""

from flask import request

from blueprints.consultations.schemas import ConsultationRef, ReadIn, SocketMessageIn
from pawmanity.conversations import consultations, messaging
from pawmanity.core import live, ratelimits
from pawmanity.identity.sockets import AuthenticatedNamespace, acknowledged, socket_actor


class ChatNamespace(AuthenticatedNamespace):
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
