"""Medical history entries. Each change makes a new version; every version is kept with who made it and when."""

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.models import MedicalRecord, MedicalRecordVersion
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import NotFound, PreconditionFailed
from pawmanity.core.extensions import db

VERSIONED_FIELDS = ("kind", "title", "details", "recorded_at")


def create_record(actor, patient_id, data):
    patient, _ = access.visible_patient(actor, patient_id)
    record = MedicalRecord(patient_id=patient.id, created_by=actor.user_id, updated_by=actor.user_id, **data)
    db.session.add(record)
    db.session.flush()
    snapshot(record, actor)
    trail.record("record.create", actor, object_type="medical_record", object_id=record.id,
                 detail={"patient_id": str(patient.id), "kind": record.kind})
    db.session.commit()
    return record


def list_records(actor, patient_id, *, page, per_page, kind=None):
    patient, _ = access.visible_patient(actor, patient_id)
    query = select(MedicalRecord).where(MedicalRecord.patient_id == patient.id) \
        .order_by(MedicalRecord.recorded_at.desc(), MedicalRecord.id)
    if kind:
        query = query.where(MedicalRecord.kind == kind)
    result = paginate(query, page=page, per_page=per_page)
    trail.record("record.list", actor, object_type="patient", object_id=patient.id,
                 detail={"ids": [str(record.id) for record in result["items"]]})
    db.session.commit()
    return result


def get_record(actor, patient_id, record_id):
    record = _visible_record(actor, patient_id, record_id)
    trail.record("record.read", actor, object_type="medical_record", object_id=record.id)
    db.session.commit()
    return record


def update_record(actor, patient_id, record_id, changes, *, expected_version):
    record = _visible_record(actor, patient_id, record_id)
    if expected_version != record.version:
        raise PreconditionFailed("The record was changed since you read it; reload and try again.",
                                 code="stale_version")
    for field, value in changes.items():
        setattr(record, field, value)
    record.updated_by = actor.user_id
    try:
        db.session.flush()  # the version check happens here: UPDATE ... WHERE version = <the one we read>
    except StaleDataError:
        db.session.rollback()
        raise PreconditionFailed("The record was changed at the same time; reload and try again.",
                                 code="stale_version") from None
    snapshot(record, actor)
    trail.record("record.update", actor, object_type="medical_record", object_id=record.id,
                 detail={"fields": sorted(changes), "version": record.version})
    db.session.commit()
    return record


def list_versions(actor, patient_id, record_id, *, page, per_page):
    record = _visible_record(actor, patient_id, record_id)
    query = select(MedicalRecordVersion).where(MedicalRecordVersion.record_id == record.id) \
        .order_by(MedicalRecordVersion.version.desc())
    result = paginate(query, page=page, per_page=per_page)
    trail.record("record.versions.read", actor, object_type="medical_record", object_id=record.id)
    db.session.commit()
    return result


def _visible_record(actor, patient_id, record_id):
    patient, _ = access.visible_patient(actor, patient_id)
    record = db.session.scalar(select(MedicalRecord).where(MedicalRecord.id == record_id,
                                                           MedicalRecord.patient_id == patient.id))
    if record is None:
        raise NotFound("No such record.")
    return record


def snapshot(record, actor):
    """Keep this version of the record."""
    db.session.add(MedicalRecordVersion(
        record_id=record.id, version=record.version, changed_by=actor.user_id, changed_at=utcnow(),
        **{field: getattr(record, field) for field in VERSIONED_FIELDS},
    ))
