"""Who may see and change which patient. The one place object-level authorization is decided.

- an admin sees everything;
- an account sees the patients it is a guardian of, and may change them;
- a doctor sees a patient only while a care relationship holds (below), and may add to their medical history.
Anything else is "not found": the API never reveals that another user's patient exists.

The doctor-patient relationship follows the appointments between them, not their history:
- an appointment the doctor confirmed (`confirmed`, `in_progress`, `completed`, `no_show`) grants access from the
  booking until `DOCTOR_ACCESS_DAYS_AFTER_VISIT` days after its end (the last visit's follow-up period);
- a pending request (`requested`) grants access until its end, so the doctor can judge whether to confirm it;
- a `cancelled` appointment grants nothing, whether it was cancelled before or after confirmation: no care was
  given, and none is planned.
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, exists, or_, select

from pawmanity.care.models import Guardianship, Patient
from pawmanity.core.database import utcnow
from pawmanity.core.errors import Forbidden, NotFound
from pawmanity.core.extensions import db
from pawmanity.scheduling.models import Appointment, DoctorProfile

GUARDIAN, DOCTOR_OF_RECORD, ADMIN = "guardian", "doctor_of_record", "admin"

# Statuses of an appointment the doctor took on; each keeps the relationship through the follow-up period.
CARE_STATUSES = ("confirmed", "in_progress", "completed", "no_show")
PENDING_STATUS = "requested"


def care_relationship(doctor_id, patient_id_column, now=None):
    """A SQL condition: the doctor is currently in a care relationship with the patient (see the module doc)."""
    now = now or utcnow()
    follow_up = timedelta(days=current_app.config["DOCTOR_ACCESS_DAYS_AFTER_VISIT"])
    return exists().where(
        Appointment.patient_id == patient_id_column,
        Appointment.doctor_id == doctor_id,
        or_(and_(Appointment.status.in_(CARE_STATUSES), Appointment.end_at >= now - follow_up),
            and_(Appointment.status == PENDING_STATUS, Appointment.end_at > now)),
    )


def doctor_profile_id(actor):
    if actor.role != "doctor":
        return None
    return db.session.scalar(select(DoctorProfile.id).where(DoctorProfile.user_id == actor.user_id))


def _guardian_of(patient_id, actor):
    return exists().where(Guardianship.patient_id == patient_id, Guardianship.user_id == actor.user_id)


def relationship_to(actor, patient, *, is_guardian=None):
    """How the actor relates to the patient: GUARDIAN, DOCTOR_OF_RECORD, ADMIN, or None. `is_guardian`, when the
    caller already asked the database, saves asking again."""
    if actor.role == "admin":
        return ADMIN
    if patient.archived_at is not None:
        return None
    if is_guardian is None:
        is_guardian = db.session.scalar(select(_guardian_of(patient.id, actor)))
    if is_guardian:
        return GUARDIAN
    doctor_id = doctor_profile_id(actor)
    if doctor_id and db.session.scalar(select(care_relationship(doctor_id, patient.id))):
        return DOCTOR_OF_RECORD
    return None


def visible_patient(actor, patient_id, *, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN), lock=False):
    """The patient if the actor may see it and act as one of `allow`; 404 if unseen, 403 if seen but not allowed."""
    if lock:
        patient = db.session.scalar(select(Patient).where(Patient.id == patient_id).with_for_update())
        is_guardian = None
    else:
        # Whether the actor is a guardian rides on the patient's own query: one round trip in the common case.
        row = db.session.execute(select(Patient, _guardian_of(Patient.id, actor)).where(Patient.id == patient_id)) \
            .first()
        patient, is_guardian = row if row is not None else (None, None)
    relation = relationship_to(actor, patient, is_guardian=is_guardian) if patient is not None else None
    if relation is None:
        raise denied(NotFound("No such patient."), actor, "patient", patient_id)
    if relation not in allow:
        raise denied(Forbidden("You can see this patient but not do this."), actor, "patient", patient_id)
    return patient, relation


def denied(error, actor, object_type, object_id):
    """Mark a refusal of patient data to a signed-in caller for the audit trail (outcome `denied`).

    The request's transaction is rolled back with the error, so the row cannot join it: the error handler writes
    it afterwards in a transaction of its own (audit.record_denial)."""
    if actor.user_id is not None:
        error.denial = {"actor": actor, "object_type": object_type, "object_id": object_id}
    return error


def visible_patients_query(actor):
    """A SELECT of the patients the actor may see (archived ones only for admins)."""
    query = select(Patient)
    if actor.role == "admin":
        return query
    query = query.where(Patient.archived_at.is_(None))
    if actor.role == "doctor":
        doctor_id = doctor_profile_id(actor)
        return query.where(care_relationship(doctor_id, Patient.id))
    return query.where(exists().where(Guardianship.patient_id == Patient.id,
                                      Guardianship.user_id == actor.user_id))
