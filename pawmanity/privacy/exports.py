"""Exports: a guardian takes away everything held about a patient they act for, and anyone everything about
themselves, as one zip archive built by a job:

    bundle.json    a FHIR R4B (4.3.0) Bundle (type collection): the patient's $everything, as the FHIR API serves it
    records.json   what the FHIR mapping does not carry yet (medical history and its versions, prescriptions, vital
                   readings and alerts, symptom-checker interviews and logs), column by column
    account.json   (exports of oneself) the account, its sign-in sessions, guardianships and notifications
    files/<upload id>/<file name>   the uploaded files, byte for byte as stored

The archive can be downloaded by its owner only (404 for anyone else) until EXPORT_HOURS after it was built; the
expiry job then deletes the file. Request, build, download and expiry are audited.
"""

from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import GUARDIAN
from pawmanity.core.database import on_commit, paginate, utcnow
from pawmanity.core.errors import Conflict, DomainError, NotFound
from pawmanity.core.extensions import db
from pawmanity.privacy import archive
from pawmanity.privacy.models import DataExport
from pawmanity.privacy.tasks import build_export


class ExportGone(DomainError):
    status, code = 410, "export_expired"


def request_export(actor, *, patient_id=None):
    """Queue an export of a patient the actor is a guardian of, or (no patient) of the actor themself."""
    if patient_id is not None:
        patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN,))
        subject_type, subject_id = "patient", patient.id
    else:
        subject_type, subject_id = "user", actor.user_id
    export = DataExport(owner_id=actor.user_id, subject_type=subject_type, subject_id=subject_id)
    db.session.add(export)
    db.session.flush()
    trail.record("export.request", actor, object_type="export", object_id=export.id,
                 detail={"subject_type": subject_type, "subject_id": str(subject_id)})
    export_id = str(export.id)
    on_commit(lambda: build_export.delay(export_id))
    db.session.commit()
    db.session.refresh(export)
    return export


def list_exports(actor, *, page, per_page):
    query = select(DataExport).where(DataExport.owner_id == actor.user_id) \
        .order_by(DataExport.requested_at.desc(), DataExport.id)
    return paginate(query, page=page, per_page=per_page)


def get(actor, export_id):
    """The actor's own export; anyone else's is not found, whoever asks (admins included)."""
    export = db.session.get(DataExport, export_id)
    if export is None or export.owner_id != actor.user_id:
        raise access.denied(NotFound("No such export."), actor, "export", export_id)
    return export


def open_archive(actor, export_id):
    """The archive's path, for its owner, while it is ready and not expired. The download is audited."""
    export = get(actor, export_id)
    if export.status == "expired" or (export.expires_at is not None and export.expires_at <= utcnow()):
        raise ExportGone("This export has expired; request a new one.")
    if export.status != "ready":
        raise Conflict(f"This export is {export.status}.", code=f"export_{export.status}")
    trail.record("export.download", actor, object_type="export", object_id=export.id)
    db.session.commit()
    return archive.export_dir() / export.archive_name


