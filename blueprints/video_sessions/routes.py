from blueprints.video_sessions.schemas import (
    CreateIn,
    JoinOut,
    VideoListQuery,
    VideoSessionDetailOut,
    VideoSessionOut,
)
from pawmanity.conversations import video
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor

blp = Blueprint("video_sessions", __name__, url_prefix=f"{API_PREFIX}/video-sessions",
                description="Video calls for video appointments")


@blp.route("", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(CreateIn)
@blp.response(201, VideoSessionOut)
@blp.alt_response(200, schema=VideoSessionOut, description="The appointment's existing session")
@blp.errors(403, 404, 409, 415, 503)
def create(data):
    """Open the video session of a confirmed video appointment (its doctor)."""
    session, created = video.create(current_actor(), data["appointment_id"])
    return session, 201 if created else 200


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(VideoListQuery, location="query")
@blp.response(200, page_of(VideoSessionOut))
def list_sessions(query):
    return video.list_sessions(current_actor(), **query)


@blp.route("/<uuid:session_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, VideoSessionDetailOut)
@blp.errors(404)
def get_session(session_id):
    """The session, with who joined and left when."""
    return video.get(current_actor(), session_id)


@blp.route("/<uuid:session_id>/join", methods=["POST"])
@blp.auth_required()
@blp.response(200, JoinOut)
@blp.errors(403, 404, 409, 503)
def join(session_id):
    """What a participant needs to connect, from shortly before the start until the end: a single-use join token and
    the ICE servers (webrtc), or an Agora RTC token for the session's channel (agora)."""
    return video.join(current_actor(), session_id)


@blp.route("/<uuid:session_id>/renew", methods=["POST"])
@blp.auth_required()
@blp.response(200, JoinOut)
@blp.errors(403, 404, 409, 503)
def renew(session_id):
    """A fresh provider token during a call (agora), after the same checks as joining."""
    return video.renew(current_actor(), session_id)


@blp.route("/<uuid:session_id>/end", methods=["POST"])
@blp.auth_required()
@blp.response(200, VideoSessionOut)
@blp.errors(403, 404, 409)
def end(session_id):
    """End the call for everyone (the doctor)."""
    return video.end(current_actor(), session_id)
