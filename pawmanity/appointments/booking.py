"""Appointments: booking (a slot, or the earliest free one), the status machine, reschedules and the calendar feed.

Double booking is made impossible by the database (see the 0002 migration); this module turns the database's
refusal into `slot_taken`, and checks everything a database cannot know: availability, verification, species.
"""

from datetime import timedelta

from blinker import Namespace
from flask import current_app
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, GUARDIAN
from pawmanity.care.models import Guardianship
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.notifications.notifier import notify
from pawmanity.scheduling import availability, doctors
from pawmanity.scheduling.models import ACTIVE_STATUSES, Appointment, AppointmentEvent

EARLIEST_WINDOW = timedelta(days=7)

# Sent inside the transaction of the change (event: booked, confirmed, cancelled, rescheduled); receivers that
# write rows join that transaction.
signals = Namespace()
appointment_changed = signals.signal("appointment-changed")

# action -> (statuses it may start from, status it leads to, who may do it)
TRANSITIONS = {
    "confirm": (("requested",), "confirmed", ("doctor", "admin")),
    "start": (("confirmed",), "in_progress", ("guardian", "doctor", "admin")),  # by opening the consultation
    "complete": (("confirmed", "in_progress"), "completed", ("doctor", "admin")),
    "cancel": (("requested", "confirmed"), "cancelled", ("guardian", "doctor", "admin")),
    "no_show": (("requested", "confirmed"), "no_show", ("doctor", "admin")),
}


def book(actor, *, doctor_id, patient_id, start, type, reason=None):
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    doctor = _bookable_doctor(doctor_id, patient)
    _check_booking_quota(actor)
    _lock_doctor_calendar(doctor.id)
    _check_start(doctor, start)  # after the lock: time off added meanwhile is seen
    # The history's first entry goes in with the appointment: one flush, and no query to load an empty history.
    appointment = Appointment(doctor_id=doctor.id, patient_id=patient.id, booked_by=actor.user_id,
                              start_at=start, end_at=start + timedelta(minutes=doctor.slot_minutes),
                              type=type, reason=reason, status="requested",
                              events=[_event(actor, "book", None, "requested", to_start=start)])
    db.session.add(appointment)
    _flush_or_slot_taken()
    trail.record("appointment.book", actor, object_type="appointment", object_id=appointment.id,
                 detail={"patient_id": str(patient.id), "doctor_id": str(doctor.id)})
    _notify_parties(appointment, "appointment.booked", "New appointment request",
                    f"{_when(appointment)} ({type.replace('_', ' ')})")
    appointment_changed.send(appointment, event="booked")
    db.session.commit()
    return appointment


def book_earliest(actor, *, patient_id, type, doctor_id=None, specialty=None, after=None, reason=None):
    """Book the earliest free slot with one doctor, or with any verified doctor of a specialty who treats
    the patient's species. A slot taken by someone else meanwhile is skipped, not reported."""
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    if doctor_id is not None:
        candidates = [_bookable_doctor(doctor_id, patient)]
    else:
        candidates = db.session.scalars(doctors.directory_query(specialty=specialty, species=patient.species)).all()
    now = utcnow()
    start = max(after or now, now)
    horizon = now + timedelta(days=current_app.config["BOOKING_HORIZON_DAYS"])
    while candidates and start < horizon:
        end = min(start + EARLIEST_WINDOW, horizon)
        options = sorted((slot.start, str(doctor.id), doctor) for doctor in candidates
                         for slot in availability.free_slots(doctor, start, end, now=now))
        for slot_start, _, doctor in options:
            try:
                return book(actor, doctor_id=doctor.id, patient_id=patient.id, start=slot_start, type=type,
                            reason=reason)
            except Conflict as conflict:
                if conflict.code != "slot_taken":
                    raise
        start = end
    raise Conflict("No free slot was found within the booking horizon.", code="no_slot_available")


def transition(actor, appointment_id, action, *, reason=None):
    appointment, relation = visible_appointment(actor, appointment_id, lock=True)
    advance(appointment, relation, actor, action, reason=reason)
    db.session.commit()
    return appointment


def advance(appointment, relation, actor, action, *, reason=None):
    """Move the appointment along the status machine (in the caller's transaction), or raise 403 / 409."""
    sources, target, allowed = TRANSITIONS[action]
    if relation not in allowed:
        raise Forbidden(f"Your role cannot {action.replace('_', ' ')} this appointment.")
    if appointment.status not in sources:
        raise Conflict(f"An appointment that is {appointment.status.replace('_', ' ')} cannot be "
                       f"{'marked no-show' if action == 'no_show' else action + 'ed'}.", code="invalid_transition")
    now = utcnow()
    if action == "no_show" and appointment.start_at > now:
        raise Conflict("A no-show can be recorded only once the start time has passed.", code="not_started")
    if action == "cancel":
        window = timedelta(hours=current_app.config["LATE_CANCEL_HOURS"])
        appointment.cancelled_at, appointment.cancelled_by, appointment.cancel_reason = now, actor.user_id, reason
        appointment.late_cancellation = appointment.start_at - now < window
    previous = appointment.status
    appointment.status = target
    _log(appointment, actor, action, previous, target, note=reason)
    trail.record(f"appointment.{action}", actor, object_type="appointment", object_id=appointment.id)
    if action in ("confirm", "cancel"):
        title = "Appointment confirmed" if action == "confirm" else "Appointment cancelled"
        _notify_parties(appointment, f"appointment.{target}", title, _when(appointment), exclude=actor.user_id)
        appointment_changed.send(appointment, event=target)


def reschedule(actor, appointment_id, start):
    appointment, relation = visible_appointment(actor, appointment_id, lock=True)
    if appointment.status not in ("requested", "confirmed"):
        raise Conflict(f"An appointment that is {appointment.status.replace('_', ' ')} cannot be rescheduled.",
                       code="invalid_transition")
    doctor = appointment.doctor
    _lock_doctor_calendar(doctor.id)
    _check_start(doctor, start)
    previous_start, previous_status = appointment.start_at, appointment.status
    appointment.start_at, appointment.end_at = start, start + timedelta(minutes=doctor.slot_minutes)
    # A change asked for by the patient's side needs the doctor to confirm again.
    if relation == "guardian":
        appointment.status = "requested"
    _flush_or_slot_taken()
    _log(appointment, actor, "reschedule", previous_status, appointment.status, from_start=previous_start,
         to_start=start)
    trail.record("appointment.reschedule", actor, object_type="appointment", object_id=appointment.id)
    _notify_parties(appointment, "appointment.rescheduled", "Appointment moved", f"Now {_when(appointment)}",
                    exclude=actor.user_id)
    appointment_changed.send(appointment, event="rescheduled")
    db.session.commit()
    return appointment


def get_appointment(actor, appointment_id):
    appointment, _ = visible_appointment(actor, appointment_id)
    trail.record("appointment.read", actor, object_type="appointment", object_id=appointment.id)
    db.session.commit()
    return appointment


def list_appointments(actor, *, page, per_page, status=None, since=None, until=None):
    # AppointmentOut shows each appointment's history: joined to the page's own query (paginate limits the
    # appointments in a subquery), so the histories cost no second statement, let alone one per row.
    query = visible_appointments_query(actor).options(joinedload(Appointment.events)) \
        .order_by(Appointment.start_at, Appointment.id)
    if status:
        query = query.where(Appointment.status == status)
    if since:
        query = query.where(Appointment.start_at >= since)
    if until:
        query = query.where(Appointment.start_at < until)
    result = paginate(query, page=page, per_page=per_page)
    trail.record("appointment.list", actor, object_type="appointment",
                 detail={"ids": [str(item.id) for item in result["items"]]})
    db.session.commit()
    return result


def visible_appointments_query(actor):
    query = select(Appointment)
    if actor.role == "admin":
        return query
    if actor.role == "doctor":
        return query.where(Appointment.doctor_id == access.doctor_profile_id(actor))
    return query.where(exists().where(Guardianship.patient_id == Appointment.patient_id,
                                      Guardianship.user_id == actor.user_id))


def calendar_appointments(actor, *, via="bearer_token"):
    """The last 30 days and everything ahead (at most 500), so the feed never freezes on old entries."""
    since = utcnow() - timedelta(days=30)
    query = visible_appointments_query(actor).where(Appointment.status != "cancelled",
                                                    Appointment.end_at >= since) \
        .order_by(Appointment.start_at).limit(500)
    appointments = db.session.scalars(query).all()
    trail.record("appointment.calendar", actor, object_type="appointment",
                 detail={"ids": [str(item.id) for item in appointments], "via": via})
    db.session.commit()
    return appointments


def visible_appointment(actor, appointment_id, *, lock=False):
    """The appointment and how the actor relates to it: 'guardian', 'doctor' (its doctor) or 'admin'."""
    query = select(Appointment).where(Appointment.id == appointment_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    appointment = db.session.scalar(query)
    relation = relation_to(actor, appointment) if appointment is not None else None
    if relation is None:
        raise NotFound("No such appointment.")
    return appointment, relation


def relation_to(actor, appointment):
    """'admin', 'doctor' (the appointment's doctor), 'guardian' (of its patient), or None."""
    if actor.role == "admin":
        return "admin"
    if actor.role == "doctor" and appointment.doctor.user_id == actor.user_id:
        return "doctor"
    if db.session.scalar(select(exists().where(Guardianship.patient_id == appointment.patient_id,
                                               Guardianship.user_id == actor.user_id))):
        return "guardian"
    return None


def _bookable_doctor(doctor_id, patient):
    doctor = doctors.load_profile(doctor_id)
    if doctor is None:
        raise NotFound("No such doctor.", code="doctor_not_found")
    if not doctors.bookable(doctor):
        raise Conflict("This doctor cannot be booked until an admin has verified them.",
                       code="doctor_not_bookable")
    if patient.species not in doctor.species_treated:  # loaded with the profile (lazy="selectin")
        raise Conflict(f"This doctor does not treat {patient.species} patients.", code="species_not_treated")
    return doctor


def _check_start(doctor, start):
    now = utcnow()
    if start <= now:
        # Relative to now, which JSON Schema cannot state: a domain refusal with its own code.
        raise InvalidInput("The start is in the past.", code="start_in_past",
                           errors={"start": ["Must be in the future."]})
    if start > now + timedelta(days=current_app.config["BOOKING_HORIZON_DAYS"]):
        raise Conflict("That is further ahead than bookings are open.", code="outside_availability")
    if not availability.is_slot_start(doctor, start):
        raise Conflict("That time is not one of the doctor's slots.", code="outside_availability")


def _check_booking_quota(actor):
    """At most N active future bookings per account. Locking the account row serialises its bookings."""
    limit = current_app.config["MAX_ACTIVE_BOOKINGS"]
    # FOR NO KEY UPDATE: it still queues this account's bookings, but does not block inserts that merely reference
    # the row (a notification, a read receipt), which a plain FOR UPDATE would, risking a deadlock.
    db.session.execute(select(User.id).where(User.id == actor.user_id).with_for_update(key_share=True))
    active = db.session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.booked_by == actor.user_id, Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start_at > utcnow()))
    if active >= limit:
        raise Conflict(f"You already hold {active} upcoming appointments, the most allowed at once.",
                       code="too_many_bookings")


def _lock_doctor_calendar(doctor_id):
    """Queue writers of one doctor's calendar behind each other.

    The exclusion constraint alone never lets an overlap in, but two transactions inserting overlapping rows at the
    same instant can each wait for the other and end in a deadlock (PostgreSQL checks exclusion constraints after
    inserting the index entry). Taking the doctor's row first makes the second writer wait, then see the conflict.
    """
    doctors.lock_calendar(doctor_id)


def _flush_or_slot_taken():
    try:
        db.session.flush()
    except IntegrityError as error:
        db.session.rollback()
        if "appointments_no_overlap" in str(error.orig):
            raise Conflict("That slot has just been taken; pick another.", code="slot_taken") from None
        raise
    except OperationalError as error:
        # Defence in depth: should two writers still deadlock, the loser lost the race for the slot.
        if getattr(error.orig, "sqlstate", None) != "40P01":
            raise
        db.session.rollback()
        raise Conflict("That slot has just been taken; pick another.", code="slot_taken") from None


def _log(appointment, actor, action, from_status, to_status, *, from_start=None, to_start=None, note=None):
    # Through the collection, so the history is loaded before the commit and the answer needs no query after it.
    appointment.events.append(_event(actor, action, from_status, to_status, from_start=from_start,
                                     to_start=to_start, note=note))


def _event(actor, action, from_status, to_status, *, from_start=None, to_start=None, note=None):
    return AppointmentEvent(actor_id=actor.user_id, action=action, from_status=from_status, to_status=to_status,
                            from_start_at=from_start, to_start_at=to_start, note=note)


def guardian_ids(patient_id):
    return db.session.scalars(select(Guardianship.user_id).where(Guardianship.patient_id == patient_id)).all()


def _notify_parties(appointment, kind, title, body, *, exclude=None):
    recipients = [user_id for user_id in [appointment.doctor.user_id, *guardian_ids(appointment.patient_id)]
                  if user_id != exclude]
    notify(recipients, kind, title=title, body=body, data={"appointment_id": str(appointment.id)})


def _when(appointment):
    return appointment.start_at.strftime("%Y-%m-%d %H:%M UTC")
