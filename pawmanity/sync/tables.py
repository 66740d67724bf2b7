"""What is synced, and whose each row is.

Every synced row carries scope keys ("p:<patient id>", "d:<doctor profile id>", "c:<consultation id>",
"u:<user id>"), and every caller has, per table family, the set of keys they may see, computed from the existing
access policy (care/access.py, appointments' and consultations' visibility queries); "*" is everything (admins).
A row is visible when one of its keys is in the caller's set. The same keys on the change log let a pull send a
tombstone only to those who could have held the row, and comparing a cursor's sets with today's tells which rows
were lost (sent as deletions) or gained (sent as created) without the rows themselves having changed.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import false, or_, select, true

from pawmanity.care import access
from pawmanity.care.models import Guardianship, MedicalRecord, Patient
from pawmanity.conversations import consultations
from pawmanity.conversations.models import Consultation, Message
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification
from pawmanity.scheduling.models import Appointment
from pawmanity.vitals.models import Observation

EVERYTHING = "*"
# scope key tag -> the sync_changes column holding it
TAG_COLUMNS = {"p": "patient_id", "d": "doctor_id", "c": "consultation_id", "u": "user_id"}


@dataclass(frozen=True)
class SyncedTable:
    name: str  # as clients see it (WatermelonDB table name)
    table: str  # the captured database table
    model: type
    family: str  # which of the caller's scope sets applies
    keys: tuple  # (tag, model attribute) pairs: the row's scope keys

    def row_keys(self, row):
        return {f"{tag}:{getattr(row, attribute)}" for tag, attribute in self.keys}

    def parse_id(self, raw):
        return int(raw) if self.model is Observation else uuid.UUID(str(raw))

    def in_scope(self, scope):
        """A SQL condition: the row has one of these keys (EVERYTHING: any row)."""
        if scope == EVERYTHING:
            return true()
        by_tag = {}
        for key in scope:
            tag, _, value = key.partition(":")
            by_tag.setdefault(tag, []).append(uuid.UUID(value))
        conditions = [getattr(self.model, attribute).in_(by_tag[tag]) for tag, attribute in self.keys if tag in by_tag]
        return or_(*conditions) if conditions else false()


TABLES = (
    SyncedTable("patients", "patients", Patient, "patients", (("p", "id"),)),
    SyncedTable("medical_records", "medical_records", MedicalRecord, "patients", (("p", "patient_id"),)),
    SyncedTable("appointments", "appointments", Appointment, "appointments",
                (("p", "patient_id"), ("d", "doctor_id"))),
    SyncedTable("messages", "messages", Message, "consultations", (("c", "consultation_id"),)),
    SyncedTable("vitals", "vital_observations", Observation, "patients", (("p", "patient_id"),)),
    SyncedTable("notifications", "notifications", Notification, "inbox", (("u", "user_id"),)),
)
BY_NAME = {spec.name: spec for spec in TABLES}


def scopes_of(actor):
    """The caller's scope sets (sorted lists of keys, or EVERYTHING), from the access policy as it stands now."""
    inbox = [f"u:{actor.user_id}"]
    if actor.is_admin:
        # Admins see every patient and appointment, but do not read consultations in passing (break-glass only).
        return {"patients": EVERYTHING, "appointments": EVERYTHING, "consultations": [], "inbox": inbox}
    patients = db.session.scalars(access.visible_patients_query(actor).with_only_columns(Patient.id)).all()
    if actor.role == "doctor":
        doctor_id = access.doctor_profile_id(actor)
        appointments = [f"d:{doctor_id}"] if doctor_id else []
    else:  # as booking.visible_appointments_query: the appointments of every patient one is a guardian of
        appointments = [f"p:{patient_id}" for patient_id in db.session.scalars(
            select(Guardianship.patient_id).where(Guardianship.user_id == actor.user_id))]
    talks = db.session.scalars(consultations.visible_query(actor).with_only_columns(Consultation.id)).all()
    return {
        "patients": sorted(f"p:{patient_id}" for patient_id in patients),
        "appointments": sorted(appointments),
        "consultations": sorted(f"c:{consultation_id}" for consultation_id in talks),
        "inbox": inbox,
    }


def visible(keys, scope):
    return scope == EVERYTHING or bool(keys & set(scope))
