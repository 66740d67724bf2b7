"""Devices registered to a patient by a guardian or a doctor of record. A device's token is random, shown once,
stored as its SHA-256, revocable, and lets the device do one thing: send readings for its own patient."""

import hashlib
import secrets

from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, NotFound, Unauthorized
from pawmanity.core.extensions import db
from pawmanity.vitals.models import Device

TOKEN_PREFIX = "pwdev_"


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def register(actor, patient_id, name):
    """Returns (device, token): the token is never shown again."""
    patient, _ = access.visible_patient(actor, patient_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = Device(patient_id=patient.id, name=name, token_hash=token_hash(token), registered_by=actor.user_id)
    db.session.add(device)
    db.session.flush()
    trail.record("device.register", actor, object_type="device", object_id=device.id,
                 detail={"patient_id": str(patient.id)})
    db.session.commit()
    return device, token


def list_devices(actor, patient_id, *, page=1, per_page=20):
    patient, _ = access.visible_patient(actor, patient_id)
    devices = paginate(select(Device).where(Device.patient_id == patient.id).order_by(Device.created_at, Device.id),
                       page=page, per_page=per_page)
    trail.record("device.list", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    return devices


def revoke(actor, device_id):
    device = db.session.get(Device, device_id)
    if device is None:
        raise NotFound("No such device.")
    access.visible_patient(actor, device.patient_id)
    if device.revoked_at is not None:
        raise Conflict("This device is already revoked.", code="device_revoked")
    device.revoked_at = utcnow()
    trail.record("device.revoke", actor, object_type="device", object_id=device.id)
    db.session.commit()
    return device


def authenticate(token):
    """The live device holding this token, or 401 (unknown and revoked tokens alike)."""
    device = None
    if token and token.startswith(TOKEN_PREFIX) and len(token) < 200:
        device = db.session.scalar(select(Device).where(Device.token_hash == token_hash(token)))
    if device is None or device.revoked_at is not None:
        raise Unauthorized("The device token is not valid.", code="invalid_device_token")
    return device
