"""Admins' side of webhooks: register endpoints (the secret is shown once), change, remove, read the delivery log
and replay a delivery."""

import base64
import secrets

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from pawmanity.audit import trail
from pawmanity.core.database import on_commit, utcnow
from pawmanity.core.errors import InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.webhooks import transport
from pawmanity.webhooks.events import EVENT_TYPES, queue
from pawmanity.webhooks.models import WebhookDelivery, WebhookEndpoint


def new_secret():
    # Standard Webhooks' form: whsec_ and base64 of 24 to 64 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url):
    target = transport.parse_url(url)
    transport.check_literal_address(target, transport.networks(current_app.config["WEBHOOK_ALLOWED_NETWORKS"]))


def check_events(events):
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise InvalidInput("Name at least one known event.",
                           errors={"events": [f"Known events: {', '.join(EVENT_TYPES)}."]})
    return sorted(set(events))


def create(actor, *, url, events, description=None):
    check_url(url)
    endpoint = WebhookEndpoint(url=url, events=check_events(events), description=description, secret=new_secret(),
                               created_by=actor.user_id)
    db.session.add(endpoint)
    db.session.flush()
    trail.record("webhook.create", actor, object_type="webhook", object_id=endpoint.id,
                 detail={"events": endpoint.events})
    db.session.commit()
    return endpoint


def get(endpoint_id):
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def list_query():
    return select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)


def update(actor, endpoint_id, changes):
    endpoint = get(endpoint_id)
    if "url" in changes:
        check_url(changes["url"])
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.events = check_events(changes["events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if changes.get("active") is True and not endpoint.active:
        # Re-enabling starts a fresh streak; deliveries that waited while it was disabled go out again.
        endpoint.active, endpoint.disabled_reason, endpoint.disabled_at, endpoint.failure_streak = True, None, None, 0
    elif changes.get("active") is False and endpoint.active:
        endpoint.active, endpoint.disabled_reason, endpoint.disabled_at = False, "admin", utcnow()
    trail.record("webhook.update", actor, object_type="webhook", object_id=endpoint.id,
                 detail={"fields": sorted(changes)})
    db.session.commit()
    return endpoint


def delete(actor, endpoint_id):
    endpoint = get(endpoint_id)
    db.session.delete(endpoint)
    trail.record("webhook.delete", actor, object_type="webhook", object_id=endpoint_id)
    db.session.commit()


def deliveries_query(endpoint_id, *, status=None):
    get(endpoint_id)
    # Each delivery is shown with its message and its attempt log: loaded with the page, not one query per row.
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id) \
        .options(joinedload(WebhookDelivery.message), selectinload(WebhookDelivery.attempt_log)) \
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return query


def get_delivery(endpoint_id, delivery_id):
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound("No such delivery.")
    return delivery


def replay(actor, endpoint_id, delivery_id):
    """Send a delivery again now, with the same webhook-id (so a receiver that already has it ignores it)."""
    delivery = get_delivery(endpoint_id, delivery_id)
    delivery.status, delivery.next_attempt_at = "pending", utcnow()
    trail.record("webhook.replay", actor, object_type="webhook", object_id=endpoint_id,
                 detail={"delivery_id": str(delivery.id)})
    ids = [str(delivery.id)]
    on_commit(lambda: queue(ids))
    db.session.commit()
    # In-process delivery (the embedded default) has already run; the answer shows how it went.
    db.session.refresh(delivery)
    return delivery
