from marshmallow import fields, validate

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime

ClientId = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{1,64}$"),
                         metadata={"description": "Chosen by the client; a retry with the same value stores once"})


class StartIn(Schema):
    appointment_id = fields.UUID(required=True)


class ConsultationOut(Schema):
    id = fields.String(required=True)
    appointment_id = fields.String(required=True)
    doctor_id = fields.String(required=True)
    patient_id = fields.String(required=True)
    # Who the conversation is about and with, so a client can say so without two more requests.
    patient_name = fields.String(required=True, attribute="patient.name")
    doctor_name = fields.String(required=True, attribute="doctor.user.full_name")
    doctor_user_id = fields.String(required=True, attribute="doctor.user_id",
                                   metadata={"description": "The doctor's user id (a message's sender_id)"})
    active = fields.Boolean(required=True)
    started_at = UTCDateTime(required=True)
    ended_at = UTCDateTime(allow_none=True)
    summary = fields.String(allow_none=True)
    diagnosis = fields.String(allow_none=True)
    message_count = fields.Integer(required=True)


class ConsultationListQuery(PageQuery):
    active = fields.Boolean()


class PrescriptionIn(Schema):
    medication = fields.String(required=True, validate=validate.Length(min=1, max=200))
    dosage = fields.String(validate=validate.Length(max=200))
    instructions = fields.String(validate=validate.Length(max=1000))
    days = fields.Integer(validate=validate.Range(min=1, max=365))
    # For pharmacies: the catalogue medicine and how many units (packs, bottles) to hand over.
    medicine_id = fields.UUID()
    quantity = fields.Integer(validate=validate.Range(min=1, max=1000))


class EndIn(Schema):
    summary = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    diagnosis = fields.String(allow_none=True, validate=validate.Length(max=2000))
    prescriptions = fields.List(fields.Nested(PrescriptionIn), load_default=list, validate=validate.Length(max=20))


class MessageIn(Schema):
    # Length and emptiness are checked after trimming, by the service, the same for REST and Socket.IO.
    body = fields.String(required=True, validate=validate.Length(max=100_000))
    client_id = ClientId
    attachment_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10))


class SocketMessageIn(MessageIn):
    consultation_id = fields.UUID(required=True)


class ConsultationRef(Schema):
    consultation_id = fields.UUID(required=True)


class ReadIn(ConsultationRef):
    message_id = fields.UUID(required=True)


class MessageOut(Schema):
    id = fields.String(required=True)
    consultation_id = fields.String(required=True)
    seq = fields.Integer(required=True)
    sender_id = fields.String(required=True)
    client_id = fields.String(required=True)
    body = fields.String(required=True)
    # [] rather than null when there are none: the same as the Socket.IO `message` event.
    attachment_ids = fields.Function(lambda message: message.attachment_ids or [], required=True,
                                     metadata={"type": "array", "items": {"type": "string"}})
    created_at = UTCDateTime(required=True)


class MessageQuery(PageQuery):
    after = fields.UUID(metadata={"description": "Only messages after this one (to catch up after reconnecting); "
                                                "pages then count from there"})
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class BreakGlassIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=10, max=1000),
                           metadata={"description": "Why an admin must read this consultation; kept in the audit "
                                                    "trail"})


class BreakGlassOut(Schema):
    consultation = fields.Nested(ConsultationOut, required=True)
    messages = fields.List(fields.Nested(MessageOut), required=True)


# /chat events: acknowledgements and what the server sends (the AsyncAPI document's payloads).
class ChatJoinAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))
    active = fields.Boolean(required=True)
    message_count = fields.Integer(required=True)


class ChatOkAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))


class ChatMessageAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))
    created = fields.Boolean(required=True, metadata={"description": "false: already stored under this client_id"})
    message = fields.Nested(MessageOut, required=True)


class ChatReadAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))
    seq = fields.Integer(required=True, metadata={"description": "Read up to this message sequence number"})


class TypingEvent(Schema):
    consultation_id = fields.String(required=True)
    user_id = fields.String(required=True)


class ReadEvent(Schema):
    consultation_id = fields.String(required=True)
    user_id = fields.String(required=True)
    message_id = fields.String(required=True)
    seq = fields.Integer(required=True)


class ConsultationEndedEvent(Schema):
    consultation_id = fields.String(required=True)
