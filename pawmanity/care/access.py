"""Who may see and change which patient. The one place object-level authorization is decided.

- an admin sees everything;
- an account sees the patients it is a guardian of, and may change them;
- a doctor sees a patient only through an appointment with them, and may add to their medical history.
Anything else is "not found": the API never reveals that another user's patient exists.
"""

from sqlalchemy import exists, select

from pawmanity.care.models import Guardianship, Patient
from pawmanity.core.errors import Forbidden, NotFound
from pawmanity.core.extensions import db
from pawmanity.scheduling.models import Appointment, DoctorProfile

GUARDIAN, DOCTOR_OF_RECORD, ADMIN = "guardian", "doctor_of_record", "admin"


def doctor_profile_id(actor):
    if actor.role != "doctor":
        return None
    return db.session.scalar(select(DoctorProfile.id).where(DoctorProfile.user_id == actor.user_id))


def relationship_to(actor, patient):
    """How the actor relates to the patient: GUARDIAN, DOCTOR_OF_RECORD, ADMIN, or None."""
    if actor.role == "admin":
        return ADMIN
    if patient.archived_at is not None:
        return None
    if db.session.scalar(select(exists().where(Guardianship.patient_id == patient.id,
                                               Guardianship.user_id == actor.user_id))):
        return GUARDIAN
    doctor_id = doctor_profile_id(actor)
    if doctor_id and db.session.scalar(select(exists().where(Appointment.patient_id == patient.id,
                                                             Appointment.doctor_id == doctor_id))):
        return DOCTOR_OF_RECORD
    return None


def visible_patient(actor, patient_id, *, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN), lock=False):
    """The patient if the actor may see it and act as one of `allow`; 404 if unseen, 403 if seen but not allowed."""
    query = select(Patient).where(Patient.id == patient_id)
    if lock:
        query = query.with_for_update()
    patient = db.session.scalar(query)
    relation = relationship_to(actor, patient) if patient is not None else None
    if relation is None:
        raise NotFound("No such patient.")
    if relation not in allow:
        raise Forbidden("You can see this patient but not do this.")
    return patient, relation


def visible_patients_query(actor):
    """A SELECT of the patients the actor may see (archived ones only for admins)."""
    query = select(Patient)
    if actor.role == "admin":
        return query
    query = query.where(Patient.archived_at.is_(None))
    if actor.role == "doctor":
        doctor_id = doctor_profile_id(actor)
        return query.where(exists().where(Appointment.patient_id == Patient.id,
                                          Appointment.doctor_id == doctor_id))
    return query.where(exists().where(Guardianship.patient_id == Patient.id,
                                      Guardianship.user_id == actor.user_id))
