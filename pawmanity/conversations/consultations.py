"""Consultations: opened from an appointment, closed by its doctor with a summary that joins the medical history."""

from datetime import timedelta

from blinker import Namespace
from flask import current_app
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import selectinload

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care import access, records
from pawmanity.care.models import Guardianship, MedicalRecord
from pawmanity.conversations.models import Consultation, Message, ReadReceipt
from pawmanity.core import live
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.notifier import notify
from pawmanity.scheduling.models import DoctorProfile

signals = Namespace()
# Sent in the ending transaction with (medical record, prescription as given) pairs; a receiver that raises
# aborts the ending. The pharmacy domain listens to make prescriptions reservable.
consultation_ended = signals.signal("consultation-ended")
# Sent inside the transaction that opens (event="started") or ends (event="ended") a consultation.
consultation_changed = signals.signal("consultation-changed")


def start(actor, appointment_id):
    """Open the appointment's consultation (or return the open one). Its doctor or a guardian may open it from a
    little before the start until the end; the appointment must be confirmed and becomes in progress."""
    appointment, relation = booking.visible_appointment(actor, appointment_id, lock=True)
    existing = db.session.scalar(select(Consultation).where(Consultation.appointment_id == appointment.id))
    if existing is not None:
        return existing, False
    now = utcnow()
    opens = appointment.start_at - timedelta(minutes=current_app.config["CONSULTATION_OPENS_MINUTES"])
    if relation != "admin" and not opens <= now < appointment.end_at:
        raise Conflict(f"The consultation opens at {opens.strftime('%Y-%m-%d %H:%M UTC')} and closes when the "
                       f"appointment ends.", code="outside_consultation_window")
    booking.advance(appointment, relation, actor, "start")
    consultation = Consultation(appointment_id=appointment.id, doctor_id=appointment.doctor_id,
                                patient_id=appointment.patient_id, started_by=actor.user_id, started_at=now)
    db.session.add(consultation)
    db.session.flush()
    participants = participant_ids(consultation)
    for user_id in participants:
        db.session.add(ReadReceipt(consultation_id=consultation.id, user_id=user_id))
    trail.record("consultation.start", actor, object_type="consultation", object_id=consultation.id)
    notify([user_id for user_id in participants if user_id != actor.user_id],
           "consultation.started", title="Your consultation has started",
           data={"consultation_id": str(consultation.id)})
    consultation_changed.send(consultation, event="started")
    db.session.commit()
    return consultation, True


def list_consultations(actor, *, page, per_page, active=None):
    query = visible_query(actor).order_by(Consultation.started_at.desc(), Consultation.id).options(
        selectinload(Consultation.patient), selectinload(Consultation.doctor).selectinload(DoctorProfile.user))
    if active is True:
        query = query.where(Consultation.ended_at.is_(None))
    elif active is False:
        query = query.where(Consultation.ended_at.is_not(None))
    result = paginate(query, page=page, per_page=per_page)
    trail.record("consultation.list", actor, object_type="consultation",
                 detail={"ids": [str(item.id) for item in result["items"]]})
    db.session.commit()
    return result


def get(actor, consultation_id):
    consultation = participant_view(actor, consultation_id)[0]
    trail.record("consultation.read", actor, object_type="consultation", object_id=consultation.id)
    db.session.commit()
    return consultation


def break_glass_read(actor, consultation_id, *, reason):
    """An admin reads a consultation and its messages, giving a reason that joins the audit trail.

    Admins are not participants: they never read a consultation in passing, only through this deliberate,
    recorded step."""
    if not actor.is_admin:
        raise Forbidden("Only an admin may break the glass; participants read their consultations directly.")
    consultation = visible(actor, consultation_id, admin_ok=True)
    messages = db.session.scalars(select(Message).where(Message.consultation_id == consultation.id)
                                  .order_by(Message.seq)).all()
    trail.record("consultation.break_glass", actor, object_type="consultation", object_id=consultation.id,
                 detail={"reason": reason, "messages": len(messages)})
    db.session.commit()
    return consultation, messages


def end(actor, consultation_id, *, summary, diagnosis=None, prescriptions=()):
    """Close the consultation; the summary, diagnosis and prescriptions join the patient's medical history."""
    consultation, participants = visible_with_participants(actor, consultation_id, lock=True, admin_ok=True)
    if not (actor.is_admin or consultation.doctor.user_id == actor.user_id):
        raise Forbidden("Only the consultation's doctor can end it.")
    if not consultation.active:
        raise Conflict("This consultation has already ended.", code="consultation_closed")
    now = utcnow()
    consultation.ended_at, consultation.ended_by = now, actor.user_id
    consultation.summary, consultation.diagnosis = summary, diagnosis
    details = summary if not diagnosis else f"{summary}\n\nDiagnosis: {diagnosis}"
    entries = [MedicalRecord(patient_id=consultation.patient_id, kind="note", title="Consultation summary",
                             details=details, recorded_at=now, created_by=actor.user_id, updated_by=actor.user_id)]
    if diagnosis:
        entries.append(MedicalRecord(patient_id=consultation.patient_id, kind="condition", title=diagnosis[:200],
                                     details=diagnosis, recorded_at=now, created_by=actor.user_id,
                                     updated_by=actor.user_id))
    prescribed = []
    for prescription in prescriptions:
        entry = MedicalRecord(patient_id=consultation.patient_id, kind="prescription",
                              title=prescription["medication"][:200], details=_prescription_text(prescription),
                              recorded_at=now, created_by=actor.user_id, updated_by=actor.user_id)
        entries.append(entry)
        prescribed.append((entry, prescription))
    db.session.add_all(entries)
    db.session.flush()
    consultation_ended.send(consultation, actor=actor, prescriptions=prescribed)
    for entry in entries:
        records.snapshot(entry, actor)
    appointment = consultation.appointment
    if appointment.status != "completed":  # the doctor may have completed the appointment already
        booking.advance(appointment, "admin" if actor.is_admin else "doctor", actor, "complete")
    trail.record("consultation.end", actor, object_type="consultation", object_id=consultation.id,
                 detail={"records": [str(entry.id) for entry in entries]})
    # The notification says that a summary exists, not what it says.
    guardians = participants[1:]  # the doctor comes first
    notify(guardians, "consultation.ended", title="Your consultation summary is ready",
           data={"consultation_id": str(consultation.id)})
    live.emit_to_users("ended", {"consultation_id": str(consultation.id)}, participants, namespace=live.CHAT)
    consultation_changed.send(consultation, event="ended")
    db.session.commit()
    return consultation


# The consultation and everyone in it in one round trip: a row per guardian, each with the doctor's user id; the
# outer join keeps the row when no guardian is left. Built once: chat sends run it for every message.
_WITH_PARTICIPANTS = (
    select(Consultation, DoctorProfile.user_id, Guardianship.user_id)
    .join(DoctorProfile, DoctorProfile.id == Consultation.doctor_id)
    .outerjoin(Guardianship, Guardianship.patient_id == Consultation.patient_id)
    .where(Consultation.id == bindparam("consultation_id")))
_WITH_PARTICIPANTS_LOCKED = _WITH_PARTICIPANTS.with_for_update(of=Consultation) \
    .execution_options(populate_existing=True)


def participant_ids(consultation):
    """The doctor's user id, then the guardians'."""
    return _participants(db.session.execute(_WITH_PARTICIPANTS, {"consultation_id": consultation.id}).all())


def _participants(rows):
    """Participants from _WITH_PARTICIPANTS' rows (a row per guardian, or one with none)."""
    return [rows[0][1], *(guardian for _, _, guardian in rows if guardian is not None)] if rows else []


def is_participant(user_id, consultation):
    return user_id in participant_ids(consultation)


def visible(actor, consultation_id, *, lock=False, admin_ok=False):
    return visible_with_participants(actor, consultation_id, lock=lock, admin_ok=admin_ok)[0]


def participant_view(actor, consultation_id, *, lock=False):
    """The consultation and its participants, for a participant only: reading, chatting, typing, receipts."""
    return visible_with_participants(actor, consultation_id, lock=lock)


def visible_with_participants(actor, consultation_id, *, lock=False, admin_ok=False):
    """The consultation and its participants' user ids (the doctor first, then the guardians).

    404 unless the actor takes part or is an admin; an admin gets 403 unless `admin_ok` (administrative steps such
    as ending a stuck consultation): admins do not read or join consultations in passing (see break_glass_read).
    """
    rows = db.session.execute(_WITH_PARTICIPANTS_LOCKED if lock else _WITH_PARTICIPANTS,
                              {"consultation_id": consultation_id}).all()
    consultation, participants = (rows[0][0] if rows else None), _participants(rows)
    if consultation is None or not (actor.is_admin or actor.user_id in participants):
        raise access.denied(NotFound("No such consultation."), actor, "consultation", consultation_id)
    if actor.user_id not in participants and not admin_ok:
        raise Forbidden("Admins do not take part in consultations; read one through a reasoned break-glass "
                        "request (POST /consultations/{id}/break-glass).", code="not_a_participant")
    return consultation, participants


def visible_query(actor):
    query = select(Consultation)
    if actor.is_admin:
        return query
    if actor.role == "doctor":
        return query.join(DoctorProfile, DoctorProfile.id == Consultation.doctor_id) \
            .where(DoctorProfile.user_id == actor.user_id)
    return query.where(exists().where(Guardianship.patient_id == Consultation.patient_id,
                                      Guardianship.user_id == actor.user_id))


def _prescription_text(prescription):
    parts = [prescription["medication"], prescription.get("dosage"), prescription.get("instructions")]
    if prescription.get("days"):
        parts.append(f"for {prescription['days']} days")
    return "; ".join(part for part in parts if part)
