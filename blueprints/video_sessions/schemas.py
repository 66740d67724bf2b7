from marshmallow import fields, validate

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime


class CreateIn(Schema):
    appointment_id = fields.UUID(required=True)


class AttendanceOut(Schema):
    user_id = fields.String(required=True)
    joined_at = UTCDateTime(required=True)
    left_at = UTCDateTime(allow_none=True)


class VideoSessionOut(Schema):
    id = fields.String(required=True)
    appointment_id = fields.String(required=True)
    room = fields.String(required=True)
    status = fields.String(required=True)
    provider = fields.String(required=True)
    # The appointment it belongs to, so a client can list sessions by what they are.
    starts_at = UTCDateTime(required=True, attribute="appointment.start_at")
    ends_at = UTCDateTime(required=True, attribute="appointment.end_at")
    patient_name = fields.String(required=True, attribute="appointment.patient.name")
    doctor_name = fields.String(required=True, attribute="appointment.doctor.user.full_name")
    created_at = UTCDateTime(required=True)
    first_joined_at = UTCDateTime(allow_none=True)
    ended_at = UTCDateTime(allow_none=True)
    duration_seconds = fields.Integer(allow_none=True)


class VideoSessionDetailOut(VideoSessionOut):
    participants = fields.List(fields.Nested(AttendanceOut), attribute="attendance", required=True)


class IceServerOut(Schema):
    urls = fields.List(fields.String(), required=True)
    username = fields.String()
    credential = fields.String()


class AgoraGrantOut(Schema):
    app_id = fields.String(required=True)
    channel = fields.String(required=True, metadata={"description": "Random; carries no personal data"})
    uid = fields.Integer(required=True, metadata={"description": "This participant's uid in this session"})
    token = fields.String(required=True, metadata={"description": "AccessToken2 (007...) for this channel and uid"})
    expires_at = UTCDateTime(required=True)


class JoinOut(Schema):
    """The `webrtc` provider gives join_token and ice_servers; the `agora` provider gives `agora`."""

    join_token = fields.String(metadata={"description": "webrtc: single use; send it in the /video join"})
    expires_at = UTCDateTime(required=True)
    room = fields.String(required=True)
    ice_servers = fields.List(fields.Nested(IceServerOut), metadata={"description": "webrtc only"})
    agora = fields.Nested(AgoraGrantOut, metadata={"description": "agora only: join the channel with these"})


class SocketJoinIn(Schema):
    session_id = fields.UUID(required=True)
    join_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class SignalIn(Schema):
    session_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(("offer", "answer", "ice")))
    data = fields.Dict(required=True)


class VideoListQuery(PageQuery):
    pass


# /video events: acknowledgements and what the server sends (the AsyncAPI document's payloads).
class VideoJoinAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))
    session_id = fields.String(required=True)


class VideoOkAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))


class PeerEvent(Schema):
    session_id = fields.String(required=True)
    user_id = fields.String(required=True)


class SignalEvent(Schema):
    session_id = fields.String(required=True)
    sender = fields.String(required=True, data_key="from", metadata={"description": "The sender's user id"})
    type = fields.String(required=True, validate=validate.OneOf(("offer", "answer", "ice")))
    data = fields.Dict(required=True, metadata={"description": "An RTCSessionDescription (offer, answer) or an "
                                                               "RTCIceCandidate (ice), as JSON"})


class VideoEndedEvent(Schema):
    session_id = fields.String(required=True)
