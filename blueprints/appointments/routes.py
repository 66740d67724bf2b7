from flask import current_app, url_for

from blueprints.appointments.calendar import calendar_feed
from blueprints.appointments.schemas import (
    AppointmentListQuery,
    AppointmentOut,
    BookEarliestIn,
    BookIn,
    CalendarFeedOut,
    CancelIn,
    RescheduleIn,
)
from pawmanity.appointments import booking, feeds
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor

blp = Blueprint("appointments", __name__, url_prefix=f"{API_PREFIX}/appointments",
                description="Booking and the appointment lifecycle")
doctor_blp = Blueprint("doctor_appointments", __name__, url_prefix=f"{API_PREFIX}/doctors/me",
                       description="A doctor's own appointments")


@blp.route("", methods=["POST"])
@blp.auth_required("patient", "admin")
@blp.idempotent()
@blp.arguments(BookIn)
@blp.response(201, AppointmentOut)
@blp.errors(404, 409, 415)
def book(data):
    """Book a free slot. 409 `slot_taken` if someone was faster, `outside_availability` if it is no slot."""
    return booking.book(current_actor(), **data)


@blp.route("/earliest", methods=["POST"])
@blp.auth_required("patient", "admin")
@blp.idempotent()
@blp.arguments(BookEarliestIn)
@blp.response(201, AppointmentOut)
@blp.errors(404, 409, 415)
def book_earliest(data):
    """Book the earliest free slot with a doctor, or with any verified doctor of a specialty for this patient."""
    return booking.book_earliest(current_actor(), **data)


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(AppointmentListQuery, location="query")
@blp.response(200, page_of(AppointmentOut))
def list_appointments(query):
    """Your appointments (for guardians, those of your patients), soonest first."""
    return booking.list_appointments(current_actor(), **query)


@blp.route("/calendar.ics", methods=["GET"])
@blp.auth_required()
@blp.response(200, content_type="text/calendar", description="iCalendar (RFC 5545) feed")
def calendar():
    """Your appointments as an iCalendar feed. Reasons and diagnoses are left out of it."""
    body = calendar_feed(booking.calendar_appointments(current_actor()))
    return current_app.response_class(body, mimetype="text/calendar",
                                      headers={"Content-Disposition": 'inline; filename="pawmanity.ics"'})


@blp.route("/calendar-feed", methods=["POST"])
@blp.auth_required()
@blp.response(201, CalendarFeedOut)
def create_calendar_feed():
    """A secret URL calendar apps can subscribe to (they cannot send a bearer token). Shown once; asking again
    rotates it and the old URL stops working. Treat it like a password."""
    secret, feed = feeds.issue(current_actor())
    url = current_app.config["PUBLIC_URL"] + url_for("appointments.calendar_by_secret", secret=secret)
    return {"url": url, "created_at": feed.created_at}


@blp.route("/calendar-feed", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(404)
def revoke_calendar_feed():
    """Revoke your calendar feed URL."""
    feeds.revoke(current_actor())


@blp.route("/calendar/<string:secret>.ics", methods=["GET"])
@blp.response(200, content_type="text/calendar", description="iCalendar (RFC 5545) feed")
@blp.errors(404)
def calendar_by_secret(secret):
    """Your appointments as an iCalendar feed, for calendar apps: the URL is the credential."""
    body = calendar_feed(feeds.appointments_for_secret(secret, current_actor()))
    return current_app.response_class(body, mimetype="text/calendar",
                                      headers={"Content-Disposition": 'inline; filename="pawmanity.ics"',
                                               "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@blp.route("/<uuid:appointment_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, AppointmentOut)
@blp.errors(404)
def get_appointment(appointment_id):
    return booking.get_appointment(current_actor(), appointment_id)


@blp.route("/<uuid:appointment_id>/confirm", methods=["POST"])
@blp.auth_required()
@blp.response(200, AppointmentOut)
@blp.errors(403, 404, 409)
def confirm(appointment_id):
    """Confirm a requested appointment (its doctor)."""
    return booking.transition(current_actor(), appointment_id, "confirm")


@blp.route("/<uuid:appointment_id>/complete", methods=["POST"])
@blp.auth_required()
@blp.response(200, AppointmentOut)
@blp.errors(403, 404, 409)
def complete(appointment_id):
    """Mark a confirmed or ongoing appointment completed (its doctor)."""
    return booking.transition(current_actor(), appointment_id, "complete")


@blp.route("/<uuid:appointment_id>/no-show", methods=["POST"])
@blp.auth_required()
@blp.response(200, AppointmentOut)
@blp.errors(403, 404, 409)
def no_show(appointment_id):
    """Record that the patient did not come (its doctor, once the start has passed)."""
    return booking.transition(current_actor(), appointment_id, "no_show")


@blp.route("/<uuid:appointment_id>/cancel", methods=["POST"])
@blp.auth_required()
@blp.arguments(CancelIn)
@blp.response(200, AppointmentOut)
@blp.errors(403, 404, 409, 415)
def cancel(data, appointment_id):
    """Cancel with a reason. Within the late-cancel window the appointment records a late cancellation."""
    return booking.transition(current_actor(), appointment_id, "cancel", reason=data["reason"])


@blp.route("/<uuid:appointment_id>/reschedule", methods=["POST"])
@blp.auth_required()
@blp.arguments(RescheduleIn)
@blp.response(200, AppointmentOut)
@blp.errors(403, 404, 409, 415)
def reschedule(data, appointment_id):
    """Move to another free slot of the same doctor; the history keeps the old time."""
    return booking.reschedule(current_actor(), appointment_id, data["start"])


@doctor_blp.route("/appointments", methods=["GET"])
@doctor_blp.auth_required("doctor")
@doctor_blp.arguments(AppointmentListQuery, location="query")
@doctor_blp.response(200, page_of(AppointmentOut))
def my_appointments(query):
    """Appointments booked with you."""
    return booking.list_appointments(current_actor(), **query)
