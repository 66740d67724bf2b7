from blueprints.consultations.schemas import (
    BreakGlassIn,
    BreakGlassOut,
    ConsultationListQuery,
    ConsultationOut,
    EndIn,
    MessageIn,
    MessageOut,
    MessageQuery,
    StartIn,
)
from pawmanity.conversations import consultations, messaging
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor

blp = Blueprint("consultations", __name__, url_prefix=f"{API_PREFIX}/consultations",
                description="Consultations and their messages")


@blp.route("", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(StartIn)
@blp.response(201, ConsultationOut)
@blp.alt_response(200, schema=ConsultationOut, description="Already open: the same consultation")
@blp.errors(403, 404, 409, 415)
def start(data):
    """Open the consultation of a confirmed appointment (its doctor, or a guardian from shortly before the start)."""
    consultation, created = consultations.start(current_actor(), data["appointment_id"])
    return consultation, 201 if created else 200


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(ConsultationListQuery, location="query")
@blp.response(200, page_of(ConsultationOut))
def list_consultations(query):
    """Consultations you take part in; `?active=true` for the open ones."""
    return consultations.list_consultations(current_actor(), **query)


@blp.route("/<uuid:consultation_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, ConsultationOut)
@blp.errors(403, 404)
def get_consultation(consultation_id):
    return consultations.get(current_actor(), consultation_id)


@blp.route("/<uuid:consultation_id>/break-glass", methods=["POST"])
@blp.auth_required()
@blp.arguments(BreakGlassIn)
@blp.response(200, BreakGlassOut)
@blp.errors(403, 404, 415)
def break_glass(data, consultation_id):
    """Admins only: read a consultation and its messages, with a reason that is written to the audit trail.
    Admins are not participants; this is the one way they read a consultation."""
    consultation, messages = consultations.break_glass_read(current_actor(), consultation_id, **data)
    return {"consultation": consultation, "messages": messages}


@blp.route("/<uuid:consultation_id>/end", methods=["POST"])
@blp.auth_required()
@blp.arguments(EndIn)
@blp.response(200, ConsultationOut)
@blp.errors(403, 404, 409, 415)
def end(data, consultation_id):
    """End with a summary, a diagnosis and prescriptions; they are added to the patient's medical history."""
    return consultations.end(current_actor(), consultation_id, **data)


@blp.route("/<uuid:consultation_id>/messages", methods=["GET"])
@blp.auth_required()
@blp.arguments(MessageQuery, location="query")
@blp.response(200, page_of(MessageOut))
@blp.errors(403, 404)
def list_messages(query, consultation_id):
    """Messages in order, in the list envelope; `?after=<message id>` returns only what came after it."""
    return messaging.list_messages(current_actor(), consultation_id, **query)


@blp.route("/<uuid:consultation_id>/messages", methods=["POST"])
@blp.auth_required()
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
@blp.alt_response(200, schema=MessageOut, description="Already stored under this client_id")
@blp.errors(403, 404, 409, 415, 429)
def post_message(data, consultation_id):
    """Send a message. The same client_id again returns the stored message instead of a copy."""
    message, created = messaging.post_message(current_actor(), consultation_id, **data)
    return message, 201 if created else 200
