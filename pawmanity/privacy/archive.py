"""Building export archives, and deleting them when their time is up (the jobs behind pawmanity.privacy.exports).

The archive's layout is described in README below and in exports.py.
"""

import hashlib
import json
import secrets
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import GUARDIAN
from pawmanity.care.models import Guardianship, Patient
from pawmanity.core.database import utcnow
from pawmanity.core.errors import DomainError
from pawmanity.core.extensions import db
from pawmanity.fhir import server
from pawmanity.identity.actor import SYSTEM, Actor
from pawmanity.identity.models import User
from pawmanity.media import storage
from pawmanity.privacy import dossier
from pawmanity.privacy.models import DataExport

README = """PAWMANITY data export

bundle.json    FHIR R4B (4.3.0) Bundle (type collection): the patient record(s) and their compartment
records.json   records the FHIR mapping does not carry yet, as stored (medical history with every version,
               prescriptions, vital readings and alerts, symptom-checker interviews and logs)
account.json   your account, sign-in sessions, guardianships and notifications (exports of yourself only)
files/         the uploaded files, by upload id
"""


class ArchiveFailed(DomainError):
    status, code = 500, "export_failed"


def export_dir():
    """EXPORT_DIR, or `exports/` in the instance folder."""
    return Path(current_app.config["EXPORT_DIR"] or Path(current_app.config["INSTANCE_DIR"]) / "exports")


def build(export_id):
    """The job: write the archive, then mark the export ready (or failed, with a reason and no partial file)."""
    export_id = uuid.UUID(str(export_id))  # the task's argument is a string
    export = db.session.get(DataExport, export_id)
    if export is None or export.status != "pending":
        return None
    owner = db.session.get(User, export.owner_id)
    actor = Actor(user_id=owner.id, role=owner.role)
    directory = export_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.zip"
    target = directory / name
    try:
        _write_archive(export, owner, actor, target)
    except DomainError as error:
        target.unlink(missing_ok=True)
        db.session.rollback()
        export = db.session.get(DataExport, export_id)
        export.status, export.error = "failed", error.detail[:200] if error.detail else error.code
        trail.record("export.build", actor, object_type="export", object_id=export.id, outcome=trail.FAILURE,
                     detail={"code": error.code})
        db.session.commit()
        return export
    now = utcnow()
    export.status, export.ready_at, export.archive_name = "ready", now, name
    export.expires_at = now + timedelta(hours=current_app.config["EXPORT_HOURS"])
    export.size = target.stat().st_size
    export.sha256 = _file_sha256(target)
    trail.record("export.build", actor, object_type="export", object_id=export.id,
                 detail={"size": export.size, "sha256": export.sha256})
    db.session.commit()
    return export


def _write_archive(export, owner, actor, target):
    context = server.Context(api_base=current_app.config["PUBLIC_URL"] + "/api/v1")
    base_url = current_app.config["PUBLIC_URL"] + "/fhir"
    if export.subject_type == "patient":
        patients = [export.subject_id]
        # Checked again when the job runs: a guardianship ended since the request ends the export.
        access.visible_patient(actor, export.subject_id, allow=(GUARDIAN,))
    else:
        patients = db.session.scalars(select(Guardianship.patient_id).where(
            Guardianship.user_id == owner.id, Guardianship.relation == "self")).all()
    resources, records, uploads = [], {}, []
    for patient_id in patients:
        resources += server.everything(actor, str(patient_id), context)  # audited as patient.everything
        patient = db.session.get(Patient, patient_id)
        records[str(patient_id)] = dossier.patient_records(patient)
        uploads += dossier.live_uploads(patient_id)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README)
        archive.writestr("bundle.json", _json(dossier.collection_bundle(resources, base_url)))
        archive.writestr("records.json", _json(records))
        if export.subject_type == "user":
            archive.writestr("account.json", _json(dossier.account(owner)))
        for upload in uploads:
            archive.writestr(f"files/{upload.id}/{upload.filename}", _stored_bytes(upload))


def _stored_bytes(upload):
    """The upload's bytes, checked against the SHA-256 recorded when it was stored (as every download is)."""
    try:
        with storage.backend(upload.storage_backend).open(upload.storage_key) as stored:
            data = stored.read()
    except OSError as error:
        raise ArchiveFailed(f"The stored file of upload {upload.id} could not be read.",
                            code="upload_unreadable") from error
    if hashlib.sha256(data).hexdigest() != upload.sha256:
        raise ArchiveFailed(f"The stored file of upload {upload.id} failed its integrity check.",
                            code="integrity_check_failed")
    return data


def _json(value):
    return json.dumps(value, indent=2, ensure_ascii=False, default=dossier.jsonable)


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expire_due(now=None):
    """Delete the archives past their time and mark them expired (the scheduled job)."""
    now = now or utcnow()
    due = db.session.scalars(select(DataExport).where(DataExport.status == "ready",
                                                      DataExport.expires_at <= now)).all()
    for export in due:
        (export_dir() / export.archive_name).unlink(missing_ok=True)
        export.status, export.archive_name = "expired", None
        trail.record("export.expire", SYSTEM, object_type="export", object_id=export.id,
                     detail={"owner_id": str(export.owner_id)})
    db.session.commit()
    return len(due)


def delete_for_owner(owner_id):
    """An erased account's exports go, files first. Returns how many."""
    exports = db.session.scalars(select(DataExport).where(DataExport.owner_id == owner_id)).all()
    for export in exports:
        if export.archive_name:
            (export_dir() / export.archive_name).unlink(missing_ok=True)
        db.session.delete(export)
    return len(exports)
