"""Erasure: a user has their account erased; an admin erases a patient.

For a patient, the clinical records under a retention duty (the FHIR compartment: appointments, consultations,
messages, weights, document metadata; and the medical history with its versions, prescriptions, vital readings and
alerts, symptom-checker interviews and logs) are copied, as they were, into one `restricted_records` row: out of
every API, readable only by an admin through an audited break-glass read, and purged by the scheduled job (or
`flask privacy purge`) once CLINICAL_RETENTION_DAYS have passed. Every live row about the patient is then deleted,
one ORM delete per row, children before parents (so change capture sees each deletion), and the uploaded files are
deleted from storage unless another upload still uses the same content.

For an account: the patients it is the only guardian of, and its own record as a person, are erased as above; it
leaves the others' guardians; its sessions, notifications, preferences, calendar feed, invitations, exports and
idempotency keys are deleted; and the account row itself, which other people's records still point at (a message
they received, an appointment it booked for a shared pet), is pseudonymised irreversibly: a random address, a fixed
name, no password. Doctors and admins are closed by an admin, not erased by themselves (their names sign other
people's records).

The erasure log (`erasures`) says what was done, in counts per table, never the data.
"""

import uuid
from collections import Counter
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from pawmanity.appointments.models import CalendarFeed, ReminderDelivery
from pawmanity.audit import trail
from pawmanity.care.models import (
    GuardianInvitation,
    Guardianship,
    MedicalRecord,
    MedicalRecordVersion,
    Patient,
    Upload,
    WeightMeasurement,
)
from pawmanity.conversations.models import (
    Consultation,
    Message,
    ReadReceipt,
    VideoAttendance,
    VideoJoinToken,
    VideoSession,
)
from pawmanity.core import ratelimits
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.docstore import DocStoreUnavailable
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable
from pawmanity.core.extensions import db, docstore
from pawmanity.core.idempotency import IdempotencyKey
from pawmanity.fhir import server
from pawmanity.identity import passwords, tokens
from pawmanity.identity.actor import SYSTEM
from pawmanity.identity.email_addresses import email_skeleton
from pawmanity.identity.models import AuthSession, User
from pawmanity.media import storage
from pawmanity.notifications.models import Notification, NotificationPreference
from pawmanity.pharmacy import stock
from pawmanity.pharmacy.models import PharmacyStaff, Prescription, Reservation
from pawmanity.privacy import archive, dossier
from pawmanity.privacy.models import Erasure, RestrictedRecord
from pawmanity.scheduling.models import Appointment, AppointmentEvent, DoctorProfile
from pawmanity.triage.diagnoses import COLLECTION as DIAGNOSIS_LOGS
from pawmanity.triage.models import DiagnosisLogOutbox, TriageInterview
from pawmanity.vitals.models import Alert, AlertRule, AlertState, Device, Observation

ERASED_NAME = "Erased user"
ERASED_DOMAIN = "erased.invalid"  # RFC 2606: can never be a real mailbox


def erase_own_account(actor, *, password):
    """The signed-in user erases their account, confirming with their password."""
    user = db.session.get(User, actor.user_id)
    ratelimits.check("password_check", user.id)
    if not passwords.verify_password(user.password_hash, password):
        ratelimits.spend("password_check", user.id)
        raise InvalidInput("The password is incorrect.", errors={"password": ["The password is incorrect."]})
    if user.role != "patient":
        raise Conflict("Doctors' and admins' accounts sign other people's records; an admin closes them.",
                       code="erasure_needs_admin")
    erasure = erase_user(user, actor)
    db.session.commit()
    return erasure


def erase_patient_as_admin(actor, patient_id, *, reason):
    if not actor.is_admin:
        raise Forbidden("Only an admin erases a patient; a user erases their own account.")
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient.")
    erasure = erase_patient(patient, actor, reason=reason)
    db.session.commit()
    return erasure


def erase_user(user, actor):
    """Erase an account (see the module doc). Joins the caller's transaction."""
    done = {"deleted": Counter(), "pseudonymised": Counter()}
    patient_erasures = []
    for link in db.session.scalars(select(Guardianship).where(Guardianship.user_id == user.id)).all():
        others = db.session.scalar(select(func.count()).select_from(Guardianship).where(
            Guardianship.patient_id == link.patient_id, Guardianship.user_id != user.id))
        if link.relation == "self" or others == 0:
            patient_erasures.append(erase_patient(db.session.get(Patient, link.patient_id), actor,
                                                  reason="account erased"))
        else:
            _delete(done, link)
    tokens.revoke_user_sessions(user.id, reason="erased")
    for model, column in ((AuthSession, AuthSession.user_id), (Notification, Notification.user_id),
                          (NotificationPreference, NotificationPreference.user_id),
                          (CalendarFeed, CalendarFeed.user_id), (IdempotencyKey, IdempotencyKey.user_id),
                          (ReadReceipt, ReadReceipt.user_id), (VideoJoinToken, VideoJoinToken.user_id),
                          (PharmacyStaff, PharmacyStaff.user_id)):
        for row in db.session.scalars(select(model).where(column == user.id)).all():
            _delete(done, row)
    # Invitation addresses are encrypted without a blind index (nothing looks them up by address), so those sent to
    # this person are found by decrypting: erasure is rare and the table holds only invitations.
    address = user.email.lower()
    for row in db.session.scalars(select(GuardianInvitation)).all():
        if row.invited_by == user.id or (row.email or "").lower() == address:
            _delete(done, row)
    done["deleted"]["data_exports"] += archive.delete_for_owner(user.id)
    pseudonym = f"erased-{uuid.uuid4().hex}@{ERASED_DOMAIN}"
    user.email, user.email_skeleton = pseudonym, email_skeleton(pseudonym)
    user.full_name, user.password_hash, user.active = ERASED_NAME, "!erased", False
    user.timezone, user.last_login_at = "UTC", None
    done["pseudonymised"]["users"] += 1
    erasure = Erasure(subject_type="user", subject_id=user.id, requested_by=actor.user_id,
                      requested_by_role=actor.role,
                      actions={"deleted": dict(done["deleted"]), "pseudonymised": dict(done["pseudonymised"]),
                               "patients_erased": [str(entry.id) for entry in patient_erasures]})
    db.session.add(erasure)
    db.session.flush()
    trail.record("user.erase", actor, object_type="user", object_id=user.id,
                 detail={"erasure_id": str(erasure.id), "patients_erased": len(patient_erasures)})
    return erasure


def erase_patient(patient, actor, *, reason):
    """Hold the patient's clinical records apart, then delete every live row about them (see the module doc).
    Joins the caller's transaction."""
    now = utcnow()
    retain_until = now + timedelta(days=current_app.config["CLINICAL_RETENTION_DAYS"])
    context = server.Context(api_base=current_app.config["PUBLIC_URL"] + "/api/v1")
    content = {
        "bundle": dossier.collection_bundle(dossier.compartment(patient, context),
                                            current_app.config["PUBLIC_URL"] + "/fhir"),
        "records": dossier.patient_records(patient),
    }
    done = {"deleted": Counter(), "restricted": Counter()}
    for key in ("medical_records", "medical_record_versions", "prescriptions", "vital_observations", "vital_alerts",
                "triage_interviews", "diagnosis_logs"):
        done["restricted"][key] = len(content["records"][key])
    for entry in content["bundle"]["entry"]:
        done["restricted"][f"fhir_{entry['resource']['resourceType']}"] += 1
    erasure = Erasure(subject_type="patient", subject_id=patient.id, requested_by=actor.user_id,
                      requested_by_role=actor.role, retain_until=retain_until, actions={})
    db.session.add(erasure)
    db.session.flush()
    db.session.add(RestrictedRecord(erasure_id=erasure.id, patient_id=patient.id, retain_until=retain_until,
                                    content=content))
    files = _delete_patient_rows(patient, done, actor)
    _delete_diagnosis_logs(patient.id)
    erasure.actions = {"deleted": dict(done["deleted"]), "restricted": dict(done["restricted"]),
                       "files_deleted": files, "reason": reason}
    trail.record("patient.erase", actor, object_type="patient", object_id=patient.id,
                 detail={"erasure_id": str(erasure.id), "retain_until": retain_until.isoformat()})
    return erasure


def _delete(done, row):
    done["deleted"][row.__tablename__] += 1
    db.session.delete(row)


def _rows(model, *conditions):
    return db.session.scalars(select(model).where(*conditions)).all()


def _delete_patient_rows(patient, done, actor):
    """Every live row about the patient, one level of the foreign-key tree at a time (children flushed before their
    parents, so no row goes by a database cascade unseen); returns how many stored files were deleted."""
    appointments = _rows(Appointment, Appointment.patient_id == patient.id)
    appointment_ids = [a.id for a in appointments]
    consultations = _rows(Consultation, Consultation.patient_id == patient.id)
    consultation_ids = [c.id for c in consultations]
    sessions = _rows(VideoSession, VideoSession.appointment_id.in_(appointment_ids))
    session_ids = [s.id for s in sessions]
    records = _rows(MedicalRecord, MedicalRecord.patient_id == patient.id)
    prescriptions = _rows(Prescription, Prescription.patient_id == patient.id)
    alerts = _rows(Alert, Alert.patient_id == patient.id)
    uploads = _rows(Upload, Upload.patient_id == patient.id)
    keys = {(upload.storage_backend, key) for upload in uploads for key in (upload.storage_key, upload.preview_key)
            if key}
    _delete_notifications_about(done, patient, appointments, consultation_ids, [a.id for a in alerts])
    reservations = _rows(Reservation, Reservation.prescription_id.in_([p.id for p in prescriptions]))
    for reservation in reservations:
        if reservation.status == "active":  # give the held units back to the pharmacy's stock
            stock.release_units(reservation, actor, reason="patient erased")

    leaves = [*uploads, *reservations, *alerts]
    for model, condition in (
            (MedicalRecordVersion, MedicalRecordVersion.record_id.in_([r.id for r in records])),
            (VideoJoinToken, VideoJoinToken.session_id.in_(session_ids)),
            (VideoAttendance, VideoAttendance.session_id.in_(session_ids)),
            (Message, Message.consultation_id.in_(consultation_ids)),
            (ReadReceipt, ReadReceipt.consultation_id.in_(consultation_ids)),
            (ReminderDelivery, ReminderDelivery.appointment_id.in_(appointment_ids)),
            (AppointmentEvent, AppointmentEvent.appointment_id.in_(appointment_ids)),
            (WeightMeasurement, WeightMeasurement.patient_id == patient.id),
            (Observation, Observation.patient_id == patient.id),
            (AlertState, AlertState.patient_id == patient.id),
            (Device, Device.patient_id == patient.id),
            (TriageInterview, TriageInterview.patient_id == patient.id),
            (DiagnosisLogOutbox, DiagnosisLogOutbox.patient_id == patient.id),
            (GuardianInvitation, GuardianInvitation.patient_id == patient.id)):
        leaves += _rows(model, condition)
    levels = (
        leaves,
        [*prescriptions, *records, *sessions, *consultations, *_rows(AlertRule, AlertRule.patient_id == patient.id)],
        [*appointments, *_rows(Guardianship, Guardianship.patient_id == patient.id)],
        [patient],
    )
    for level in levels:
        for row in level:
            _delete(done, row)
        db.session.flush()
    return _delete_unused_files(keys)


def _delete_notifications_about(done, patient, appointments, consultation_ids, alert_ids):
    """Other people's notifications about this patient (a reminder names the patient) go too."""
    recipients = set(db.session.scalars(select(Guardianship.user_id).where(Guardianship.patient_id == patient.id)))
    doctors = {a.doctor_id for a in appointments}
    if doctors:
        recipients |= set(db.session.scalars(select(DoctorProfile.user_id).where(DoctorProfile.id.in_(doctors))))
    about = {("patient_id", str(patient.id))} | {("appointment_id", str(a.id)) for a in appointments} \
        | {("consultation_id", str(c)) for c in consultation_ids} | {("alert_id", str(a)) for a in alert_ids}
    for notification in _rows(Notification, Notification.user_id.in_(recipients)) if recipients else ():
        if any((key, str(value)) in about for key, value in (notification.data or {}).items()):
            _delete(done, notification)
    db.session.flush()


def _delete_unused_files(keys):
    """Stored files are content-addressed: one still used by another upload stays."""
    deleted = 0
    for backend, key in keys:
        still_used = db.session.scalar(select(func.count()).select_from(Upload).where(
            Upload.storage_backend == backend, (Upload.storage_key == key) | (Upload.preview_key == key)))
        if still_used:
            continue
        store = storage.backend(backend)
        if hasattr(store, "path"):
            path = store.path(key)
            if path.exists():
                path.unlink()
                deleted += 1
        else:
            store.client.delete_object(Bucket=store.bucket, Key=store.prefix + key)
            deleted += 1
    return deleted


def _delete_diagnosis_logs(patient_id):
    try:
        docstore.run(lambda store: store[DIAGNOSIS_LOGS].delete_many({"patient_id": str(patient_id)}))
    except DocStoreUnavailable as error:
        raise ServiceUnavailable("The document store is unavailable; try again shortly.",
                                 code="docstore_unavailable") from error


def list_erasures(actor, *, page, per_page):
    _admin_only(actor)
    return paginate(select(Erasure).order_by(Erasure.performed_at.desc(), Erasure.id), page=page,
                    per_page=per_page)


def get_erasure(actor, erasure_id):
    _admin_only(actor)
    erasure = db.session.get(Erasure, erasure_id)
    if erasure is None:
        raise NotFound("No such erasure.")
    return erasure


def break_glass_read(actor, erasure_id, *, reason):
    """An admin reads the restricted records of an erased patient, giving a reason that joins the audit trail."""
    erasure = get_erasure(actor, erasure_id)
    record = db.session.scalar(select(RestrictedRecord).where(RestrictedRecord.erasure_id == erasure.id))
    if record is None:
        raise NotFound("Nothing is held for this erasure (or its retention period has ended).",
                       code="no_restricted_records")
    trail.record("restricted.break_glass", actor, object_type="erasure", object_id=erasure.id,
                 detail={"reason": reason})
    db.session.commit()
    return record


def purge_due(now=None):
    """Delete restricted records whose retention period has ended (the scheduled job). Returns how many."""
    now = now or utcnow()
    due = db.session.scalars(select(RestrictedRecord).where(RestrictedRecord.retain_until <= now)).all()
    for record in due:
        erasure = db.session.get(Erasure, record.erasure_id)
        erasure.purged_at = now
        db.session.delete(record)
        trail.record("restricted.purge", SYSTEM, object_type="erasure", object_id=erasure.id)
    db.session.commit()
    return len(due)


def _admin_only(actor):
    if not actor.is_admin:
        raise Forbidden("Only admins read the erasure log.")
