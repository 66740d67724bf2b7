"""Everything held about a patient or a user, gathered once for the two uses that need all of it: an export (the
person takes it away) and an erasure (the clinical part is held apart under its retention duty).

The FHIR part is the FHIR API's own mapping (pawmanity.fhir); what FHIR does not carry here yet (the medical history
with its versions, prescriptions, vital readings and alerts, symptom-checker interviews and logs) goes alongside as
plain JSON, column by column, so nothing is left out by a mapping that does not exist.
"""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select

from pawmanity.care.models import Guardianship, MedicalRecord, MedicalRecordVersion, Upload, WeightMeasurement
from pawmanity.conversations.models import Consultation, Message
from pawmanity.core.docstore import DocStoreUnavailable
from pawmanity.core.encryption.fields import fields_of
from pawmanity.core.errors import ServiceUnavailable
from pawmanity.core.extensions import db, docstore
from pawmanity.fhir import server
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import AuthSession
from pawmanity.notifications.models import Notification, NotificationPreference
from pawmanity.pharmacy.models import Prescription, Reservation
from pawmanity.scheduling.models import Appointment
from pawmanity.triage.diagnoses import COLLECTION as DIAGNOSIS_LOGS
from pawmanity.triage.models import DiagnosisLogOutbox, TriageInterview
from pawmanity.vitals.models import Alert, Observation

# The patient's compartment as $everything serves it: (FHIR type, patient column, order).
COMPARTMENT = (
    ("Appointment", Appointment.patient_id, Appointment.start_at),
    ("Encounter", Consultation.patient_id, Consultation.started_at),
    ("Communication", Consultation.patient_id, Message.created_at),
    ("DocumentReference", Upload.patient_id, Upload.created_at),
    ("Observation", WeightMeasurement.patient_id, WeightMeasurement.measured_at),
)
# The visibility queries' widest view, used only after the caller's own access check.
EVERYTHING = Actor(role="admin")
# Never exported or kept: secrets and lookup keys, not information about the person.
HIDDEN_COLUMNS = {"password_hash", "email_skeleton", "token_hash", "secret_hash", "secret"}


def row_dict(row):
    """A row as the person would read it: encrypted identifiers in plain text, never their ciphertexts or indexes."""
    encrypted = fields_of(row)
    stored_forms = {attr for field in encrypted for attr in (field.ciphertext_attr, field.index_attr)}
    found = {column.key: jsonable(getattr(row, column.key)) for column in row.__mapper__.column_attrs
             if column.key not in HIDDEN_COLUMNS | stored_forms}
    found.update({field.name: getattr(row, field.name) for field in encrypted if field.name not in HIDDEN_COLUMNS})
    return found


def jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    return value


def compartment(patient, context):
    """The patient's FHIR resources, without an access check (the caller has made it) and without auditing."""
    found = [server.RESOURCE_TYPES["Patient"].to_resource(patient, context)]
    for name, column, order in COMPARTMENT:
        kind = server.RESOURCE_TYPES[name]
        query = kind.visible(EVERYTHING).where(column == patient.id).order_by(order)
        found += [kind.to_resource(row, context) for row in db.session.scalars(query)]
    return found




def collection_bundle(resources, base_url):
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}", "resource": resource}
                      for resource in resources]}


def patient_records(patient):
    """What the FHIR mapping does not carry yet, table by table."""
    records = db.session.scalars(select(MedicalRecord).where(MedicalRecord.patient_id == patient.id)
                                 .order_by(MedicalRecord.recorded_at)).all()
    versions = db.session.scalars(select(MedicalRecordVersion).where(
        MedicalRecordVersion.record_id.in_([record.id for record in records]))
        .order_by(MedicalRecordVersion.record_id, MedicalRecordVersion.version)).all() if records else []
    prescriptions = db.session.scalars(select(Prescription).where(Prescription.patient_id == patient.id)
                                       .order_by(Prescription.created_at)).all()
    reservations = db.session.scalars(select(Reservation).where(
        Reservation.prescription_id.in_([p.id for p in prescriptions]))).all() if prescriptions else []
    return {
        "patient": row_dict(patient),
        "medical_records": [row_dict(row) for row in records],
        "medical_record_versions": [row_dict(row) for row in versions],
        "prescriptions": [row_dict(row) for row in prescriptions],
        "pharmacy_reservations": [row_dict(row) for row in reservations],
        "vital_observations": [row_dict(row) for row in db.session.scalars(
            select(Observation).where(Observation.patient_id == patient.id).order_by(Observation.taken_at))],
        "vital_alerts": [row_dict(row) for row in db.session.scalars(
            select(Alert).where(Alert.patient_id == patient.id))],
        "triage_interviews": [row_dict(row) for row in db.session.scalars(
            select(TriageInterview).where(TriageInterview.patient_id == patient.id))],
        "diagnosis_logs": diagnosis_logs(patient.id),
    }


def diagnosis_logs(patient_id):
    """The symptom checker's logs of this patient: delivered ones from the document store, the rest from the
    outbox. The store being down is a 503: an export or an erasure must not silently leave them out."""
    try:
        stored = docstore.run(lambda store: list(store[DIAGNOSIS_LOGS].find({"patient_id": str(patient_id)})))
    except DocStoreUnavailable as error:
        raise ServiceUnavailable("The document store is unavailable; try again shortly.",
                                 code="docstore_unavailable") from error
    waiting = db.session.scalars(select(DiagnosisLogOutbox).where(DiagnosisLogOutbox.patient_id == patient_id,
                                                                  DiagnosisLogOutbox.delivered_at.is_(None))).all()
    seen = {str(document["_id"]) for document in stored}
    documents = [{key: jsonable(value) for key, value in document.items()} for document in stored]
    documents += [row.document for row in waiting if str(row.diagnosis_id) not in seen]
    return documents


def live_uploads(patient_id):
    return db.session.scalars(select(Upload).where(Upload.patient_id == patient_id, Upload.deleted_at.is_(None))
                              .order_by(Upload.created_at)).all()


def account(user):
    """The account and what hangs off it that is not a patient's record."""
    return {
        "user": row_dict(user),
        "sign_in_sessions": [row_dict(row) for row in db.session.scalars(
            select(AuthSession).where(AuthSession.user_id == user.id).order_by(AuthSession.created_at))],
        "guardianships": [row_dict(row) for row in db.session.scalars(
            select(Guardianship).where(Guardianship.user_id == user.id))],
        "notifications": [row_dict(row) for row in db.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.created_at))],
        "notification_preferences": [row_dict(row) for row in db.session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user.id))],
    }
