"""Push: a batch of client changes applied in one transaction, all or nothing; and the per-record resolve.

Each updated record names the `version` the client last pulled. If the server's copy has moved on since, it is a
conflict: nothing of the batch is applied and every conflict is reported with the server's current copy, for the
client to merge and send again (the whole batch, or record by record through `resolve`). A change that would
leave the server as it already is (a retry whose first answer was lost) is `unchanged`, not a conflict, so a
batch can be sent again safely; creates are keyed by their client-chosen UUID the same way.

What can be written: patients (create, profile changes; a deletion archives, primary guardian only), medical
records (create, change; history is never deleted) and notifications (marking read). Appointments, messages and
vitals have rules of their own (booking, chat ordering, device ingest) and are pulled only.
"""

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from pawmanity.audit import trail
from pawmanity.care import access, patients, records
from pawmanity.care.access import ADMIN, GUARDIAN
from pawmanity.care.models import Guardianship, MedicalRecord, Patient
from pawmanity.core.database import utcnow
from pawmanity.core.errors import Conflict, Forbidden, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification

PATIENT_FIELDS = ("name", "species", "breed", "sex", "date_of_birth", "microchip_id")
RECORD_FIELDS = ("kind", "title", "details", "recorded_at")
ORDER = ("patients", "medical_records", "notifications")  # a record may belong to a patient created in the batch


class SyncConflict(Conflict):
    """The batch was refused; `conflicts` lists (table, id, client version, server row or None)."""

    code = "sync_conflict"

    def __init__(self, conflicts):
        super().__init__(f"{len(conflicts)} change(s) were made against a version that has moved on; nothing was "
                         "applied. Merge with the server's copy in `conflicts` and push again.")
        self.conflicts = conflicts


def push(actor, changes):
    """Apply every change or none. Returns [{"table", "id", "status", "version"}]."""
    results, conflicts = [], []
    for table in ORDER:
        batch = changes.get(table) or {}
        for kind in ("created", "updated", "deleted"):
            for change in sorted(batch.get(kind) or [], key=lambda item: str(_id_of(item))):
                outcome = APPLY[table, kind](actor, change)
                (conflicts if outcome.get("conflict") else results).append({"table": table, **outcome})
    if conflicts:
        db.session.rollback()
        raise SyncConflict([{key: value for key, value in item.items() if key != "conflict"} for item in conflicts])
    try:
        db.session.flush()
    except StaleDataError:  # rows are locked as they are read, so only a writer ignoring locks gets here
        db.session.rollback()
        raise Conflict("A record changed while the batch was applied; pull and push again.",
                       code="sync_conflict") from None
    trail.record("sync.push", actor, object_type="sync", detail={
        "changes": [{"table": item["table"], "id": str(item["id"]), "status": item["status"]} for item in results]})
    db.session.commit()
    return results


def resolve(actor, table, record_id, version, merged):
    """One record's merged copy against the server version it was merged with (a conflict's `server_version`)."""
    (result,) = push(actor, {table: {"updated": [{**merged, "id": record_id, "version": version}]}})
    return result, current_copy(table, record_id)


def current_copy(table, record_id):
    model = {"patients": Patient, "medical_records": MedicalRecord, "notifications": Notification}[table]
    return db.session.get(model, record_id)


def _id_of(change):
    return change["id"] if isinstance(change, dict) else change


def _conflict(record_id, client_version, server, reason="version_moved"):
    return {"conflict": True, "id": record_id, "reason": reason, "client_version": client_version,
            "server_version": getattr(server, "version", None), "server": server}


def _same(row, change, fields):
    return all(getattr(row, field) == change[field] for field in fields if field in change)


# Patients -------------------------------------------------------------------------------------------------------

def create_patient(actor, change):
    existing = db.session.get(Patient, change["id"])
    if existing is not None:
        mine = access.relationship_to(actor, existing) in (GUARDIAN, ADMIN)
        if mine and _same(existing, change, PATIENT_FIELDS):
            return {"id": existing.id, "status": "unchanged", "version": existing.version}
        return _conflict(change["id"], None, existing if mine else None, reason="id_taken")
    profile = {field: change.get(field) for field in PATIENT_FIELDS if field in change}
    profile.setdefault("sex", "unknown")
    patients._check_profile(profile)
    patient = Patient(id=change["id"], **profile)
    relation = "owner" if profile["species"] != "human" else "guardian"
    patient.guardianships.append(Guardianship(user_id=actor.user_id, relation=relation, is_primary=True))
    db.session.add(patient)
    db.session.flush()
    trail.record("patient.create", actor, object_type="patient", object_id=patient.id, detail={"via": "sync"})
    return {"id": patient.id, "status": "created", "version": patient.version}


def update_patient(actor, change):
    patient, _ = access.visible_patient(actor, change["id"], allow=(GUARDIAN, ADMIN), lock=True)
    fields = [field for field in PATIENT_FIELDS if field in change]
    if _same(patient, change, fields):
        return {"id": patient.id, "status": "unchanged", "version": patient.version}
    if change["version"] != patient.version:
        return _conflict(patient.id, change["version"], patient)
    patients._check_profile({**{field: getattr(patient, field) for field in PATIENT_FIELDS},
                             **{field: change[field] for field in fields}})
    for field in fields:
        setattr(patient, field, change[field])
    db.session.flush()
    trail.record("patient.update", actor, object_type="patient", object_id=patient.id,
                 detail={"fields": sorted(fields), "via": "sync"})
    return {"id": patient.id, "status": "updated", "version": patient.version}


def archive_patient(actor, patient_id):
    patient = db.session.scalar(select(Patient).where(Patient.id == patient_id).with_for_update())
    link = db.session.scalar(select(Guardianship).where(Guardianship.patient_id == patient_id,
                                                        Guardianship.user_id == actor.user_id)) \
        if patient is not None else None
    if patient is not None and patient.archived_at is not None and (link is not None or actor.is_admin):
        return {"id": patient.id, "status": "unchanged", "version": patient.version}  # a retry
    patient, relation = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    if relation == GUARDIAN and not link.is_primary:
        raise Forbidden("Only the primary guardian can remove this patient.")
    patient.archived_at = utcnow()
    db.session.flush()
    trail.record("patient.archive", actor, object_type="patient", object_id=patient.id, detail={"via": "sync"})
    return {"id": patient.id, "status": "archived", "version": patient.version}


# Medical records ------------------------------------------------------------------------------------------------

def create_record(actor, change):
    patient, _ = access.visible_patient(actor, change["patient_id"])
    existing = db.session.get(MedicalRecord, change["id"])
    if existing is not None:
        mine = existing.patient_id == patient.id
        if mine and _same(existing, change, RECORD_FIELDS):
            return {"id": existing.id, "status": "unchanged", "version": existing.version}
        return _conflict(change["id"], None, existing if mine else None, reason="id_taken")
    record = MedicalRecord(id=change["id"], patient_id=patient.id, created_by=actor.user_id,
                           updated_by=actor.user_id, **{field: change.get(field) for field in RECORD_FIELDS})
    db.session.add(record)
    db.session.flush()
    records.snapshot(record, actor)
    trail.record("record.create", actor, object_type="medical_record", object_id=record.id,
                 detail={"patient_id": str(patient.id), "kind": record.kind, "via": "sync"})
    return {"id": record.id, "status": "created", "version": record.version}


def update_record(actor, change):
    record = db.session.scalar(select(MedicalRecord).where(MedicalRecord.id == change["id"]).with_for_update())
    if record is None:
        raise NotFound("No such record.", extra={"table": "medical_records", "id": str(change["id"])})
    access.visible_patient(actor, record.patient_id)
    if change.get("patient_id") not in (None, record.patient_id):
        raise Forbidden("A record cannot move to another patient.", code="record_patient_fixed")
    fields = [field for field in RECORD_FIELDS if field in change]
    if _same(record, change, fields):
        return {"id": record.id, "status": "unchanged", "version": record.version}
    if change["version"] != record.version:
        return _conflict(record.id, change["version"], record)
    for field in fields:
        setattr(record, field, change[field])
    record.updated_by = actor.user_id
    db.session.flush()
    records.snapshot(record, actor)
    trail.record("record.update", actor, object_type="medical_record", object_id=record.id,
                 detail={"fields": sorted(fields), "version": record.version, "via": "sync"})
    return {"id": record.id, "status": "updated", "version": record.version}


# Notifications --------------------------------------------------------------------------------------------------

def read_notification(actor, change):
    notification = db.session.scalar(select(Notification).where(Notification.id == change["id"],
                                                                Notification.user_id == actor.user_id))
    if notification is None:
        raise NotFound("No such notification.", extra={"table": "notifications", "id": str(change["id"])})
    if notification.read_at is not None or change.get("read_at") is None:
        return {"id": notification.id, "status": "unchanged", "version": None}
    notification.read_at = min(change["read_at"], utcnow())
    return {"id": notification.id, "status": "read", "version": None}


APPLY = {
    ("patients", "created"): create_patient,
    ("patients", "updated"): update_patient,
    ("patients", "deleted"): archive_patient,
    ("medical_records", "created"): create_record,
    ("medical_records", "updated"): update_record,
    ("notifications", "updated"): read_notification,
}
