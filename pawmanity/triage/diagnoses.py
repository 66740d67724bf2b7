"""AI diagnoses: assess a patient's symptoms, log everything to MongoDB, and never lose a log.

Every diagnosis writes one document (the request's symptom codes, free-text notes only with consent, all raw model
outputs, the rules that fired, the model version, latency, caller, patient, time). The document is first committed
to a PostgreSQL outbox in the same transaction as the audit row, so a log exists exactly when its diagnosis was
answered, and is as durable as the audit trail. It is copied to MongoDB after the answer (`deliver`, in a green
thread of its own; at once outside a server) and leaves the outbox when stored there. A log the process did not
get to deliver (a crash, MongoDB down) waits for `drain_outbox` (Celery beat, every minute); the document's _id is
the diagnosis id, so delivering twice stores it once. Readers look in the outbox too, so a log is never missing.

Why after the answer: the embedded store (MontyDB on SQLite) waits for the disk on every write, and that wait was
most of a diagnosis's time; the outbox row costs no extra disk wait, as it commits with the audit row.
"""

import time
import uuid
from datetime import date

from blinker import Namespace
from flask import current_app
from sqlalchemy import delete, select

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, DOCTOR_OF_RECORD, GUARDIAN
from pawmanity.care.models import Patient
from pawmanity.core import offload, ratelimits
from pawmanity.core.database import on_commit, utcnow
from pawmanity.core.docstore import DocStoreUnavailable, store_by_id
from pawmanity.core.errors import InvalidInput, NotFound
from pawmanity.core.extensions import db, docstore
from pawmanity.notifications.notifier import notify
from pawmanity.triage import assessment
from pawmanity.triage.knowledge import knowledge_base
from pawmanity.triage.models import DiagnosisFeedback, DiagnosisLogOutbox

COLLECTION = "diagnosis_logs"
# Sent inside the transaction of an urgency-5 diagnosis, with its id and the patient's (never its content).
signals = Namespace()
diagnosis_urgent = signals.signal("diagnosis-urgent")

PUBLIC_FIELDS = ("conditions", "urgency", "recommendations", "specialist", "booking", "low_confidence",
                 "not_recognised", "model", "disclaimer")


def diagnose(actor, *, patient_id, symptoms, notes=None, store_notes=False, age_years=None, age_band=None):
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN))
    age_range = patient_age_range(patient, age_years=age_years, age_band=age_band)  # checks the species too
    ratelimits.spend("diagnosis", actor.user_id)  # only a request that will be assessed spends the budget
    started = time.perf_counter()
    result = assessment.assess(patient.species, symptoms, age_range=age_range, sex=patient_sex(patient))
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return log_assessment(actor, patient, result, request={"symptoms": symptoms,
                                                           "notes": notes if store_notes else None},
                          age_range=age_range, latency_ms=latency_ms)


def log_assessment(actor, patient, result, *, request, age_range, latency_ms, diagnosis_id=None, extra=None,
                   commit=True):
    """Log one assessment (a diagnosis, or an interview's final one) and notify guardians of an emergency.

    commit=False leaves the transaction to the caller (an interview commits its own row with the log)."""
    diagnosis_id, now = diagnosis_id or uuid.uuid4(), utcnow()
    public = {"id": str(diagnosis_id), "patient_id": str(patient.id), "created_at": _iso(now),
              **{key: result[key] for key in PUBLIC_FIELDS}}
    document = {"_id": str(diagnosis_id), **public, "caller_id": str(actor.user_id), "species": patient.species,
                "age_years": round((age_range[0] + age_range[1]) / 2, 2), "age_range": list(age_range),
                "sex": patient_sex(patient), "request": request, "raw": result["raw"], "latency_ms": latency_ms,
                **(extra or {})}
    trail.record("diagnosis.create", actor, object_type="diagnosis", object_id=diagnosis_id,
                 detail={"patient_id": str(patient.id), "urgency": result["urgency"]["level"]})
    if result["urgency"]["level"] == 5:
        notify(booking.guardian_ids(patient.id), "ai.urgent", title="Seek care now",
               body=" ".join(result["recommendations"][:-1] or result["recommendations"]),
               data={"diagnosis_id": str(diagnosis_id), "patient_id": str(patient.id)})
        diagnosis_urgent.send(None, diagnosis_id=diagnosis_id, patient_id=patient.id)
    db.session.add(DiagnosisLogOutbox(diagnosis_id=diagnosis_id, patient_id=patient.id, document=document))
    on_commit(lambda: offload.after_response(deliver, diagnosis_id))
    if commit:
        db.session.commit()
    return public


def list_diagnoses(actor, *, patient_id=None, page=1, per_page=20):
    """A page of the assessments of the patients the actor may see, newest first (the list envelope)."""
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
    ordered = sorted(found.values(), key=lambda doc: (doc["created_at"], doc["_id"]), reverse=True)
    start = (page - 1) * per_page
    shown = ordered[start:start + per_page]
    trail.record("diagnosis.list", actor, object_type="diagnosis", detail={"ids": [doc["_id"] for doc in shown]})
    db.session.commit()
    return {"items": [_public(doc) for doc in shown], "page": page, "per_page": per_page, "total": len(ordered)}


def get(actor, diagnosis_id):
    document = _document(diagnosis_id)
    access.visible_patient(actor, uuid.UUID(document["patient_id"]))
    trail.record("diagnosis.read", actor, object_type="diagnosis", object_id=diagnosis_id)
    db.session.commit()
    return _public(document)


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
        docstore.run(lambda store: store[COLLECTION].update_one({"_id": str(diagnosis_id)}, {"$set": {"feedback": {
            "confirmed_condition": confirmed_condition, "by": str(actor.user_id), "at": _iso(row.created_at)}}}))
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


def deliver(diagnosis_id):
    """Copy one committed log from the outbox to MongoDB and take it out of the outbox; if the store cannot take
    it now, it stays for `drain_outbox`. Safe to run twice (upsert by _id; a row already gone is left alone)."""
    row = db.session.get(DiagnosisLogOutbox, diagnosis_id)
    if row is not None and row.delivered_at is None and _store(row.document):
        db.session.execute(delete(DiagnosisLogOutbox).where(DiagnosisLogOutbox.diagnosis_id == diagnosis_id))
    db.session.commit()


def drain_outbox(batch=100):
    """Deliver every waiting log to MongoDB, a batch at a time, until none is left or the store fails (then the
    rest waits for the next run). Safe to run again and from several workers (upsert by _id)."""
    delivered = 0
    while True:
        waiting = db.session.scalars(select(DiagnosisLogOutbox).where(DiagnosisLogOutbox.delivered_at.is_(None))
                                     .order_by(DiagnosisLogOutbox.created_at).limit(batch)).all()
        for row in waiting:
            if not _store(row.document):
                db.session.commit()  # keep what did get through
                return delivered
            db.session.delete(row)  # stored in MongoDB: it leaves the outbox
            delivered += 1
        db.session.commit()
        if len(waiting) < batch:
            return delivered


def _store(document):
    def write(store):
        collection = store[COLLECTION]
        _ensure_indexes(collection)
        if docstore.blocking:  # the embedded store waits for the disk: on the thread pool, the loop keeps answering
            offload.run_blocking(store_by_id, collection, document)
        else:
            store_by_id(collection, document)

    try:
        docstore.run(write)
        return True
    except DocStoreUnavailable:  # skipped: the failure that opened the breaker has been logged
        return False
    except Exception as error:  # any failure of the document store sends the log to the outbox
        current_app.logger.warning("diagnosis log kept in the outbox: %s", type(error).__name__)
        return False


def _find(query):
    try:
        return docstore.run(lambda store: list(store[COLLECTION].find(query)))
    except Exception:  # the store is down: the outbox still answers for what it holds
        return []


def _ensure_indexes(collection):
    state = current_app.extensions.setdefault("diagnosis_log_indexes", {})
    if not state.get("done"):
        collection.create_index([("patient_id", 1), ("created_at", -1)])
        collection.create_index([("created_at", -1)])
        state["done"] = True


def patient_age_range(patient, *, age_years=None, age_band=None):
    """The record's date of birth when it has one; otherwise the age (or band) the caller gave, never a guess."""
    kb = knowledge_base()
    if patient.date_of_birth is not None:
        age_years = max((date.today() - patient.date_of_birth).days / 365.25, 0.0)
        age_band = None
    return kb.age_range(patient.species, age_years=age_years, age_band=age_band)


def patient_sex(patient):
    return {"male": "male", "male_neutered": "male", "female": "female", "female_spayed": "female"}.get(patient.sex)


def _public(document):
    # Logs written before a field existed simply lack it.
    return {key: document[key] for key in ("id", "patient_id", "created_at", *PUBLIC_FIELDS) if key in document}


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")
