"""Patients (people and animals), their guardians and weights. Every read of patient data is audited.

A recorded weight is announced with `weight_recorded` (measurement=the WeightMeasurement, flushed, so its id is
known) inside its transaction; the vitals domain, above this one, subscribes in the app factory and stores it as a
body-weight reading too.
"""

import hashlib
import secrets
from datetime import date, timedelta
from decimal import Decimal

from blinker import Namespace
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, GUARDIAN
from pawmanity.care.models import NEUTER_STATUSES, GuardianInvitation, Guardianship, Patient, WeightMeasurement
from pawmanity.core import ratelimits
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from pawmanity.core.extensions import db
from pawmanity.identity.email_addresses import normalize_email
from pawmanity.identity.models import User
from pawmanity.notifications.notifier import queue_email

GRAM = Decimal("0.001")
signals = Namespace()
weight_recorded = signals.signal("weight-recorded")
PROFILE_FIELDS = ("name", "species", "breed", "sex", "date_of_birth", "microchip_id")


def on_user_registered(user):
    """Subscribed to identity's `user_registered` by the app factory: a new patient account gets its own record."""
    if user.role == "patient":
        create_self_patient(user)


def create_self_patient(user):
    """A person who registers as a patient gets their own record, with themself as guardian."""
    patient = Patient(name=user.full_name, species="human", sex="unknown")
    patient.guardianships.append(Guardianship(user_id=user.id, relation="self", is_primary=True))
    db.session.add(patient)
    return patient


def create_patient(actor, data):
    _check_profile(data)
    weight = data.pop("weight_kg", None)
    relation = data.pop("relation", None) or ("owner" if data["species"] != "human" else "guardian")
    patient = Patient(**data)
    patient.guardianships.append(Guardianship(user_id=actor.user_id, relation=relation, is_primary=True))
    db.session.add(patient)
    measurement = _record_weight(patient, weight, utcnow(), actor) if weight is not None else None
    db.session.flush()
    _announce_weights([measurement] if measurement else [])
    trail.record("patient.create", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    return patient


def list_patients(actor, *, page, per_page, species=None, microchip_id=None):
    query = access.visible_patients_query(actor).order_by(Patient.created_at, Patient.id)
    if species:
        query = query.where(Patient.species == species)
    if microchip_id:
        query = query.where(Patient.microchip_id == microchip_id)  # the blind index: chips are stored encrypted
    result = paginate(query, page=page, per_page=per_page)
    trail.record("patient.list", actor, object_type="patient",
                 detail={"ids": [str(patient.id) for patient in result["items"]]})
    db.session.commit()
    return result


def get_patient(actor, patient_id):
    patient, _ = access.visible_patient(actor, patient_id)
    trail.record("patient.read", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    return patient


def update_patient(actor, patient_id, changes, *, expected_version=None):
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    if expected_version is not None and expected_version != patient.version:
        raise PreconditionFailed("The patient was changed since you read it; reload and try again.",
                                 code="stale_version")
    weight = changes.pop("weight_kg", None)
    _check_profile({**{field: getattr(patient, field) for field in PROFILE_FIELDS}, **changes})
    for field, value in changes.items():
        setattr(patient, field, value)
    measurement = _record_weight(patient, weight, utcnow(), actor) if weight is not None else None
    trail.record("patient.update", actor, object_type="patient", object_id=patient.id,
                 detail={"fields": sorted(changes) + (["weight_kg"] if weight is not None else [])})
    _commit_versioned(weights=[measurement] if measurement else [])
    return patient


def archive_patient(actor, patient_id):
    """Patients are archived, never erased: their medical history must be kept."""
    patient, relation = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    if relation == GUARDIAN and not _is_primary_guardian(patient, actor.user_id):
        raise Forbidden("Only the primary guardian can remove this patient.")
    patient.archived_at = utcnow()
    trail.record("patient.archive", actor, object_type="patient", object_id=patient.id)
    _commit_versioned()


def add_weight(actor, patient_id, weight_kg, measured_at):
    if measured_at > utcnow() + timedelta(minutes=5):
        # Relative to now, which JSON Schema cannot state: a domain refusal with its own code.
        raise InvalidInput("A weight cannot be measured in the future.", code="measured_in_future",
                           errors={"measured_at": ["Must not be in the future."]})
    patient, _ = access.visible_patient(actor, patient_id)
    measurement = _record_weight(patient, weight_kg, measured_at, actor)
    trail.record("patient.weight", actor, object_type="patient", object_id=patient.id)
    _commit_versioned(weights=[measurement])
    return measurement


def list_weights(actor, patient_id, *, page, per_page):
    patient, _ = access.visible_patient(actor, patient_id)
    query = select(WeightMeasurement).where(WeightMeasurement.patient_id == patient.id) \
        .order_by(WeightMeasurement.measured_at.desc(), WeightMeasurement.id.desc())
    result = paginate(query, page=page, per_page=per_page)
    trail.record("patient.weights.read", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    return result


def _record_weight(patient, weight_kg, measured_at, actor):
    """Add a measurement; it becomes the patient's current weight unless a later one exists."""
    weight_kg = Decimal(str(weight_kg)).quantize(GRAM)
    # No autoflush: the patient's other pending changes must go out in the same UPDATE (one version bump).
    with db.session.no_autoflush:
        latest = db.session.scalar(select(WeightMeasurement.measured_at).where(
            WeightMeasurement.patient_id == patient.id).order_by(WeightMeasurement.measured_at.desc()).limit(1)) \
            if patient.id is not None else None
    measurement = WeightMeasurement(patient=patient, weight_kg=weight_kg, measured_at=measured_at,
                                    recorded_by=actor.user_id)
    db.session.add(measurement)
    if latest is None or measured_at >= latest:
        patient.weight_kg = weight_kg
    return measurement


# Guardianship ---------------------------------------------------------------------------------------------------

def list_guardians(actor, patient_id, *, page=1, per_page=20):
    """A page of the patient's guardians, longest-standing first."""
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    shown = paginate(select(Guardianship).where(Guardianship.patient_id == patient.id)
                     .order_by(Guardianship.created_at, Guardianship.user_id), page=page, per_page=per_page)
    links = shown["items"]
    users = {user.id: user for user in db.session.scalars(  # the page's accounts in one query
        select(User).where(User.id.in_([link.user_id for link in links])))} if links else {}
    trail.record("patient.guardians.read", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    shown["items"] = [{"user_id": link.user_id, "full_name": users[link.user_id].full_name,
                       "email": users[link.user_id].email, "relation": link.relation, "is_primary": link.is_primary,
                       "since": link.created_at} for link in links]
    return shown


def invite_guardian(actor, patient_id, *, email, relation):
    """E-mail a single-use link; the token itself is never stored, only its hash."""
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    ratelimits.spend("invitation", actor.user_id)  # each one sends an e-mail to an address of the caller's choosing
    email = normalize_email(email)  # the form accounts are stored in, so accept_invitation can compare them
    token = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["GUARDIAN_INVITATION_HOURS"])
    invitation = GuardianInvitation(patient_id=patient.id, email=email, relation=relation,
                                    token_hash=_token_hash(token), invited_by=actor.user_id,
                                    expires_at=utcnow() + ttl)
    db.session.add(invitation)
    db.session.flush()
    trail.record("patient.guardian.invite", actor, object_type="patient", object_id=patient.id,
                 detail={"invitation_id": str(invitation.id)})
    # The name of the patient only: no clinical details leave by e-mail. Sent after the commit, by the worker.
    queue_email(
        email,
        "You have been invited to help care for a patient",
        f"You have been invited to act as {relation.replace('_', ' ')} for {patient.name}.\n\n"
        f"Sign in with this e-mail address and accept the invitation with this code:\n\n{token}\n\n"
        f"The code works once and expires in {int(ttl.total_seconds() // 3600)} hours.",
    )
    db.session.commit()
    return invitation


def accept_invitation(actor, token):
    invitation = db.session.scalar(select(GuardianInvitation).where(
        GuardianInvitation.token_hash == _token_hash(token)).with_for_update())
    if invitation is None:
        raise NotFound("This invitation does not exist.", code="invitation_not_found")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has already been used.", code="invitation_used")
    if invitation.expires_at <= utcnow():
        raise Conflict("This invitation has expired; ask for a new one.", code="invitation_expired")
    user = db.session.get(User, actor.user_id)
    if user.email != invitation.email:
        raise NotFound("This invitation does not exist.", code="invitation_not_found")
    invitation.accepted_at = utcnow()
    invitation.accepted_by = user.id
    exists_already = db.session.scalar(select(Guardianship).where(
        Guardianship.patient_id == invitation.patient_id, Guardianship.user_id == user.id))
    if exists_already is None:
        db.session.add(Guardianship(patient_id=invitation.patient_id, user_id=user.id,
                                    relation=invitation.relation))
    trail.record("patient.guardian.accept", actor, object_type="patient", object_id=invitation.patient_id)
    db.session.commit()
    return db.session.get(Patient, invitation.patient_id)


def remove_guardian(actor, patient_id, user_id):
    patient, relation = access.visible_patient(actor, patient_id, allow=(GUARDIAN, ADMIN))
    link = db.session.scalar(select(Guardianship).where(Guardianship.patient_id == patient.id,
                                                        Guardianship.user_id == user_id))
    if link is None:
        raise NotFound("This account is not a guardian of the patient.")
    leaving_themself = user_id == actor.user_id
    if relation == GUARDIAN and not leaving_themself and not _is_primary_guardian(patient, actor.user_id):
        raise Forbidden("Only the primary guardian can remove other guardians.")
    if link.is_primary:
        raise Conflict("The primary guardian cannot be removed.", code="primary_guardian")
    db.session.delete(link)
    trail.record("patient.guardian.remove", actor, object_type="patient", object_id=patient.id,
                 detail={"user_id": str(user_id)})
    db.session.commit()


def _is_primary_guardian(patient, user_id):
    return any(link.user_id == user_id and link.is_primary for link in patient.guardianships)


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _check_profile(data):
    if data.get("species") == "human":
        if data.get("sex") in NEUTER_STATUSES:
            raise InvalidInput("Neuter status applies to animals.", code="not_for_people",
                               errors={"sex": ["Use female, male, intersex or unknown for a person."]})
        if data.get("microchip_id"):
            raise InvalidInput("People do not have microchip ids.", code="not_for_people",
                               errors={"microchip_id": ["Only animals have a microchip id."]})
    born = data.get("date_of_birth")
    if born is not None and born > date.today():
        raise InvalidInput("The date of birth is in the future.", code="born_in_future",
                           errors={"date_of_birth": ["Must not be in the future."]})


def _announce_weights(measurements):
    for measurement in measurements:
        weight_recorded.send(None, measurement=measurement)


def _commit_versioned(weights=()):
    """Commit; a concurrent change to the patient is 412. New weights are flushed first (all the patient's changes in
    one UPDATE, one version bump) and announced, so their vital-sign twins commit with them."""
    try:
        if weights:
            db.session.flush()
            _announce_weights(weights)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise PreconditionFailed("The patient was changed at the same time; reload and try again.",
                                 code="stale_version") from None

