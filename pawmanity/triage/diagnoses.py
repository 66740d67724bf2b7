"""AI diagnoses: assess a patient's symptoms, log everything to MongoDB, and never lose a log.

Every diagnosis writes one document (the request's symptom codes, free-text notes only with consent, all raw model
outputs, the rules that fired, the model version, latency, caller, patient, time). When MongoDB cannot take it, the
document waits in a PostgreSQL outbox committed with the audit row, and `drain_outbox` delivers it later; the
document's _id is the diagnosis id, so delivering twice stores it once.
"""

import time
import uuid
from datetime import date

from blinker import Namespace
from flask import current_app
from sqlalchemy import select

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, DOCTOR_OF_RECORD, GUARDIAN
from pawmanity.care.models import Patient
from pawmanity.core.database import utcnow
from pawmanity.core.errors import InvalidInput, NotFound
from pawmanity.core.extensions import db, docstore
from pawmanity.notifications.notifier import notify
from pawmanity.triage import assessment
from pawmanity.triage.knowledge import knowledge_base
from pawmanity.triage.models import DiagnosisFeedback, DiagnosisLogOutbox

COLLECTION = "diagnosis_logs"
TYPICAL_AGE = {"human": 35.0, "dog": 5.0, "cat": 7.0}  # when the record has no date of birth
# Sent inside the transaction of an urgency-5 diagnosis, with its id and the patient's (never its content).
signals = Namespace()
diagnosis_urgent = signals.signal("diagnosis-urgent")

PUBLIC_FIELDS = ("conditions", "urgency", "recommendations", "specialist", "low_confidence", "model", "disclaimer")


def diagnose(actor, *, patient_id, symptoms, notes=None, store_notes=False):
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN))
    knowledge_base().check_species(patient.species)
    started = time.perf_counter()
    result = assessment.assess(patient.species, symptoms, age_years=_age(patient), sex=_sex(patient))
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    diagnosis_id, now = uuid.uuid4(), utcnow()
    public = {"id": str(diagnosis_id), "patient_id": str(patient.id), "created_at": _iso(now),
              **{key: result[key] for key in PUBLIC_FIELDS}}
    document = {"_id": str(diagnosis_id), **public, "caller_id": str(actor.user_id), "species": patient.species,
                "age_years": round(_age(patient), 2), "sex": _sex(patient),
                "request": {"symptoms": symptoms, "notes": notes if store_notes else None},
                "raw": result["raw"], "latency_ms": latency_ms}
    trail.record("diagnosis.create", actor, object_type="diagnosis", object_id=diagnosis_id,
                 detail={"patient_id": str(patient.id), "urgency": result["urgency"]["level"]})
    if result["urgency"]["level"] == 5:
        notify(booking.guardian_ids(patient.id), "ai.urgent", title="Seek care now",
               body=" ".join(result["recommendations"][:-1] or result["recommendations"]),
               data={"diagnosis_id": str(diagnosis_id), "patient_id": str(patient.id)})
        diagnosis_urgent.send(None, diagnosis_id=diagnosis_id, patient_id=patient.id)
    if not _store(document):
        db.session.add(DiagnosisLogOutbox(diagnosis_id=diagnosis_id, patient_id=patient.id, document=document))
    db.session.commit()
    return public


def list_diagnoses(actor, *, patient_id=None, limit=50):
    if patient_id is not None:
        patient_ids = [access.visible_patient(actor, patient_id)[0].id]
    else:
        patient_ids = db.session.scalars(access.visible_patients_query(actor)
                                         .with_only_columns(Patient.id)).all()
    wanted = [str(pid) for pid in patient_ids]
    found = {doc["_id"]: doc for doc in _find({"patient_id": {"$in": wanted}})}
    for waiting in db.session.scalars(select(DiagnosisLogOutbox).where(
            DiagnosisLogOutbox.delivered_at.is_(None), DiagnosisLogOutbox.patient_id.in_(patient_ids))):
        found.setdefault(waiting.document["_id"], waiting.document)
    trail.record("diagnosis.list", actor, object_type="diagnosis", detail={"count": len(found)})
    db.session.commit()
    ordered = sorted(found.values(), key=lambda doc: doc["created_at"], reverse=True)[:limit]
    return [{key: doc[key] for key in ("id", "patient_id", "created_at", *PUBLIC_FIELDS)} for doc in ordered]


def get(actor, diagnosis_id):
    document = _document(diagnosis_id)
    access.visible_patient(actor, uuid.UUID(document["patient_id"]))
    trail.record("diagnosis.read", actor, object_type="diagnosis", object_id=diagnosis_id)
    db.session.commit()
    return {key: document[key] for key in ("id", "patient_id", "created_at", *PUBLIC_FIELDS)}


def feedback(actor, diagnosis_id, *, confirmed_condition, comment=None):
    """The doctor of record confirms what it was; the case joins the next training run."""
    document = _document(diagnosis_id)
    access.visible_patient(actor, uuid.UUID(document["patient_id"]), allow=(DOCTOR_OF_RECORD, ADMIN))
    species = document["species"]
    if confirmed_condition not in knowledge_base().conditions_for(species):
        raise InvalidInput(f"Not a {species} condition the checker knows.",
                           errors={"confirmed_condition": [f"Unknown {species} condition."]})
    row = db.session.get(DiagnosisFeedback, diagnosis_id) or DiagnosisFeedback(diagnosis_id=diagnosis_id)
    row.doctor_user_id, row.species = actor.user_id, species
    row.confirmed_condition, row.comment = confirmed_condition, comment
    row.case = {"symptoms": document["request"]["symptoms"], "age_years": document.get("age_years"),
                "sex": document.get("sex")}
    row.created_at = utcnow()
    db.session.add(row)
    trail.record("diagnosis.feedback", actor, object_type="diagnosis", object_id=diagnosis_id,
                 detail={"confirmed_condition": confirmed_condition})
    db.session.commit()
    try:  # the log shows the outcome too; the PostgreSQL row is the record that matters for training
        docstore.db[COLLECTION].update_one({"_id": str(diagnosis_id)}, {"$set": {"feedback": {
            "confirmed_condition": confirmed_condition, "by": str(actor.user_id), "at": _iso(row.created_at)}}})
    except Exception as error:  # the store is down: the feedback is safe in PostgreSQL
        current_app.logger.warning("feedback not copied to the diagnosis log: %s", type(error).__name__)
    return {"diagnosis_id": str(diagnosis_id), "confirmed_condition": confirmed_condition, "comment": comment,
            "created_at": _iso(row.created_at)}


def _document(diagnosis_id):
    document = next(iter(_find({"_id": str(diagnosis_id)})), None)
    if document is None:
        waiting = db.session.get(DiagnosisLogOutbox, diagnosis_id)
        document = waiting.document if waiting is not None else None
    if document is None:
        raise NotFound("No such diagnosis.")
    return document


def drain_outbox(batch=100):
    """Deliver waiting logs to MongoDB; safe to run again and from several workers (upsert by _id)."""
    delivered = 0
    waiting = db.session.scalars(select(DiagnosisLogOutbox).where(DiagnosisLogOutbox.delivered_at.is_(None))
                                 .order_by(DiagnosisLogOutbox.created_at).limit(batch)).all()
    for row in waiting:
        if not _store(row.document):
            break  # still down: try again later
        row.delivered_at = utcnow()
        db.session.commit()
        delivered += 1
    return delivered


def _store(document):
    try:
        collection = docstore.db[COLLECTION]
        collection.replace_one({"_id": document["_id"]}, document, upsert=True)
        _ensure_indexes(collection)
        return True
    except Exception as error:  # any failure of the document store sends the log to the outbox
        current_app.logger.warning("diagnosis log kept in the outbox: %s", type(error).__name__)
        return False


def _find(query):
    try:
        return list(docstore.db[COLLECTION].find(query))
    except Exception:  # the store is down: the outbox still answers for what it holds
        return []


def _ensure_indexes(collection):
    state = current_app.extensions.setdefault("diagnosis_log_indexes", {})
    if not state.get("done"):
        collection.create_index([("patient_id", 1), ("created_at", -1)])
        collection.create_index([("created_at", -1)])
        state["done"] = True


def _age(patient):
    if patient.date_of_birth is None:
        return TYPICAL_AGE[patient.species]
    return max((date.today() - patient.date_of_birth).days / 365.25, 0.0)


def _sex(patient):
    return {"male": "male", "male_neutered": "male", "female": "female", "female_spayed": "female"}.get(patient.sex)


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")
