"""The events webhooks announce, and how a lower domain's signal becomes rows in the outbox.

The receivers run inside the transaction of the change (blinker calls them synchronously from the service), so an
event is stored if and only if the change commits; the delivery is queued after the commit. Payloads are thin:
ids, the kind and the time, never clinical details (a receiver that wants more asks the API, which checks access).
"""

import uuid

from sqlalchemy import select

from pawmanity.core.database import on_commit, utcnow
from pawmanity.core.extensions import db
from pawmanity.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from pawmanity.webhooks.tasks import deliver_webhooks

EVENT_TYPES = (
    "appointment.booked", "appointment.confirmed", "appointment.cancelled", "appointment.rescheduled",
    "consultation.started", "consultation.ended", "diagnosis.urgent", "upload.added",
    "vitals.alert_opened", "vitals.alert_resolved",
)


def emit(event_type, data):
    """Store the event and one pending delivery per active endpoint subscribed to it, in the caller's transaction."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    endpoints = [endpoint for endpoint in db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.active.is_(True))) if event_type in endpoint.events]
    if not endpoints:
        return None
    now = utcnow()
    message = WebhookMessage(id=f"msg_{uuid.uuid4().hex}", event_type=event_type, created_at=now,
                             payload={"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"),
                                      "data": data})
    db.session.add(message)
    deliveries = [WebhookDelivery(id=uuid.uuid4(), endpoint_id=endpoint.id, message_id=message.id,
                                  next_attempt_at=now) for endpoint in endpoints]
    db.session.add_all(deliveries)
    ids = [str(delivery.id) for delivery in deliveries]
    on_commit(lambda: queue(ids))
    return message


def queue(delivery_ids):
    """Ask a worker (or, in the embedded default, this process) to deliver these now."""
    deliver_webhooks.delay(delivery_ids)


# Receivers, connected to the lower domains' signals by the app factory.

def on_appointment_changed(appointment, *, event):
    emit(f"appointment.{event}", {"appointment_id": str(appointment.id), "patient_id": str(appointment.patient_id),
                                  "doctor_id": str(appointment.doctor_id), "status": appointment.status})


def on_consultation_changed(consultation, *, event):
    emit(f"consultation.{event}", {"consultation_id": str(consultation.id),
                                   "appointment_id": str(consultation.appointment_id),
                                   "patient_id": str(consultation.patient_id)})


def on_diagnosis_urgent(_sender, *, diagnosis_id, patient_id):
    emit("diagnosis.urgent", {"diagnosis_id": str(diagnosis_id), "patient_id": str(patient_id)})


def on_upload_added(upload):
    emit("upload.added", {"upload_id": str(upload.id), "patient_id": str(upload.patient_id)})


def on_vitals_alert_changed(alert, *, event):
    emit(f"vitals.alert_{event}", {"alert_id": str(alert.id), "patient_id": str(alert.patient_id)})
