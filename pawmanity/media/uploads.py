"""Uploads tied to patients: stored clean and content-addressed, checked for access and integrity on every read."""

import hashlib
import re
import unicodedata

from blinker import Namespace
from flask import current_app
from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, GUARDIAN
from pawmanity.care.models import MedicalRecord, Patient, Upload
from pawmanity.conversations.models import Consultation
from pawmanity.core import ratelimits
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import DomainError, Forbidden, NotFound
from pawmanity.core.extensions import db
from pawmanity.core.offload import run_blocking
from pawmanity.media import imaging, storage

# Sent inside the transaction that stores a new upload.
signals = Namespace()
upload_added = signals.signal("upload-added")


class IntegrityCheckFailed(DomainError):
    status, code = 500, "integrity_check_failed"


def create(actor, *, patient_id, data, filename, description=None, consultation_id=None, record_id=None):
    patient, _ = access.visible_patient(actor, patient_id)
    for model, wanted, code in ((Consultation, consultation_id, "consultation_not_found"),
                                (MedicalRecord, record_id, "record_not_found")):
        if wanted is not None:
            linked = db.session.get(model, wanted)
            if linked is None or linked.patient_id != patient.id:
                raise NotFound(f"No such {code.split('_')[0]} for this patient.", code=code)
    # Cleaning and storing are the dear part: both budgets must have room before either is spent.
    ratelimits.check("upload", actor.user_id)
    ratelimits.check("upload_bytes", actor.user_id, cost=len(data))
    ratelimits.spend("upload", actor.user_id)
    ratelimits.spend("upload_bytes", actor.user_id, cost=len(data))
    try:
        clean, sha256, preview_sha = run_blocking(_clean_and_digest, data,
                                                  max_samples=current_app.config["UPLOAD_MAX_SAMPLES"])
    except DomainError as refusal:
        current_app.logger.info("upload refused for patient %s: %s %s (%d bytes)", patient.id, refusal.status,
                                refusal.code, len(data))
        raise
    store = storage.backend()
    key = storage.content_key(sha256, clean.suffix)
    _put(store, key, clean.data)
    preview_key = None
    if clean.preview is not None:
        preview_key = storage.content_key(preview_sha, ".png")
        _put(store, preview_key, clean.preview)
    upload = Upload(patient_id=patient.id, consultation_id=consultation_id, record_id=record_id,
                    uploaded_by=actor.user_id,
                    filename=safe_filename(filename, clean.suffix), description=description,
                    content_type=clean.content_type, size=len(clean.data), sha256=sha256, width=clean.width,
                    height=clean.height, storage_backend=store.name, storage_key=key, preview_key=preview_key,
                    preview_sha256=preview_sha, details=clean.details or None)
    db.session.add(upload)
    db.session.flush()
    trail.record("upload.create", actor, object_type="upload", object_id=upload.id,
                 detail={"patient_id": str(patient.id), "content_type": clean.content_type, "size": upload.size})
    upload_added.send(upload)
    db.session.commit()
    return upload


def list_uploads(actor, *, page, per_page, patient_id=None):
    query = select(Upload).where(Upload.deleted_at.is_(None),
                                 Upload.patient_id.in_(access.visible_patients_query(actor)
                                                       .with_only_columns(Patient.id)))
    if patient_id is not None:
        query = query.where(Upload.patient_id == patient_id)
    result = paginate(query.order_by(Upload.created_at.desc(), Upload.id), page=page, per_page=per_page)
    trail.record("upload.list", actor, object_type="upload", detail={"ids": [str(u.id) for u in result["items"]]})
    db.session.commit()
    return result


def get(actor, upload_id, *, action="upload.read"):
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.deleted_at is not None:
        raise NotFound("No such upload.")
    access.visible_patient(actor, upload.patient_id)  # 404 when the patient is not the actor's to see
    trail.record(action, actor, object_type="upload", object_id=upload.id)
    db.session.commit()
    return upload


def open_content(actor, upload_id, *, preview=False):
    """The stored file (or its PNG preview) as a path or a rewound file, after checking access and that its bytes
    still hash to what was stored."""
    upload = get(actor, upload_id, action="upload.preview" if preview else "upload.download")
    key, expected = (upload.preview_key, upload.preview_sha256) if preview else (upload.storage_key, upload.sha256)
    if key is None:
        raise NotFound("This upload has no preview.", code="no_preview")
    store = storage.backend(upload.storage_backend)
    stored = store.open(key)
    digest = hashlib.sha256()
    for chunk in iter(lambda: stored.read(1 << 20), b""):
        digest.update(chunk)
    if digest.hexdigest() != expected:
        stored.close()
        current_app.logger.error("upload %s failed its integrity check (%s)", upload.id, key)
        raise IntegrityCheckFailed("The stored file failed its integrity check and will not be served.")
    if hasattr(store, "path"):
        # A local file is served from its path, so its size is known and Range requests work.
        stored.close()
        return upload, store.path(key)
    stored.seek(0)
    return upload, stored


def delete(actor, upload_id):
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.deleted_at is not None:
        raise NotFound("No such upload.")
    _, relation = access.visible_patient(actor, upload.patient_id)
    if relation not in (GUARDIAN, ADMIN) and upload.uploaded_by != actor.user_id:
        raise Forbidden("Only the patient's guardians, the uploader or an admin can delete this file.")
    upload.deleted_at, upload.deleted_by = utcnow(), actor.user_id
    trail.record("upload.delete", actor, object_type="upload", object_id=upload.id,
                 detail={"sha256": upload.sha256, "filename": upload.filename})
    db.session.commit()


def safe_filename(name, suffix):
    """A display name that cannot traverse paths or smuggle control characters; the suffix matches the content."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name)[:100] or "upload"
    return f"{stem}{suffix}"


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _clean_and_digest(data, *, max_samples):
    # On the media pool, digests included: hashing megabytes holds the thread that does it.
    clean = imaging.clean(data, max_samples=max_samples)
    return clean, _sha256(clean.data), _sha256(clean.preview) if clean.preview is not None else None


def _put(store, key, data):
    # A local write blocks the thread that makes it, so it goes to the media pool; S3's is network I/O, which the
    # event loop already waits on cooperatively.
    if store.name == "local":
        run_blocking(store.put, key, data)
    else:
        store.put(key, data)
