"""Delivering the outbox: Standard Webhooks signatures, retries with exponential backoff and full jitter, endpoints
disabled after a streak of failures or at once on 410 Gone.

A delivery is claimed by pushing its next attempt past a lease (so another worker does not take it while the HTTP
request is in flight; a worker that dies mid-request leaves it due again once the lease is over). Receivers see the
same `webhook-id` on every retry of one event and de-duplicate by it, as the specification asks.
"""

import json
import random
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.webhooks import transport
from pawmanity.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

USER_AGENT = "PAWMANITY-Webhooks/1"


def backoff(attempts):
    """Seconds before the next try after `attempts` failures: full jitter over an exponential ceiling."""
    base = current_app.config["WEBHOOK_RETRY_BASE_SECONDS"]
    ceiling = min(current_app.config["WEBHOOK_RETRY_MAX_SECONDS"], base * 2 ** (attempts - 1))
    return random.uniform(base, max(base, ceiling))


def signed_headers(endpoint, message, now):
    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True)
    signature = Webhook(endpoint.secret).sign(message.id, now, body)
    headers = {"webhook-id": message.id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature, "content-type": "application/json", "user-agent": USER_AGENT}
    return body.encode(), headers


def claim(delivery_ids=None, *, now=None, limit=50):
    """Take due deliveries of active endpoints for this worker; returns their ids."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT_SECONDS"] * 3 + 30)
    query = select(WebhookDelivery).join(WebhookEndpoint).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
        WebhookEndpoint.active.is_(True)).order_by(WebhookDelivery.next_attempt_at).limit(limit) \
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    if delivery_ids is not None:
        query = query.where(WebhookDelivery.id.in_([uuid.UUID(str(ident)) for ident in delivery_ids]))
    claimed = db.session.scalars(query).all()
    for delivery in claimed:
        delivery.next_attempt_at = now + lease
    ids = [delivery.id for delivery in claimed]
    db.session.commit()
    return ids


def deliver_due(delivery_ids=None, *, now=None):
    """Attempt every due delivery (or the named ones, when due). Returns {delivered, failed, retrying}."""
    counts = {"delivered": 0, "failed": 0, "retrying": 0}
    for delivery_id in claim(delivery_ids, now=now):
        counts[attempt(delivery_id, now=now)] += 1
    return counts


def attempt(delivery_id, *, now=None):
    delivery = db.session.get(WebhookDelivery, delivery_id)
    endpoint, message = delivery.endpoint, delivery.message
    # The signature carries the real time (receivers refuse stale timestamps); `now` only moves the schedule.
    sent_at = utcnow()
    clock = now or sent_at
    body, headers = signed_headers(endpoint, message, sent_at)
    config, url = current_app.config, endpoint.url
    db.session.commit()  # no transaction stays open while the receiver takes its time
    outcome = transport.post(url, body, headers,
                             allowed_networks=transport.networks(config["WEBHOOK_ALLOWED_NETWORKS"]),
                             timeout=config["WEBHOOK_TIMEOUT_SECONDS"])
    # Re-read under a lock: an admin may have disabled the endpoint or replayed meanwhile.
    delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                 .with_for_update().execution_options(populate_existing=True))
    endpoint = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
                                 .with_for_update().execution_options(populate_existing=True))
    db.session.add(WebhookAttempt(delivery_id=delivery.id, at=sent_at, status_code=outcome.status_code,
                                  error=outcome.error, duration_ms=outcome.duration_ms))
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = \
        sent_at, outcome.status_code, outcome.error
    if outcome.status_code is not None and 200 <= outcome.status_code < 300:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", sent_at, None
        endpoint.failure_streak = 0
        result = "delivered"
    else:
        endpoint.failure_streak += 1
        if outcome.status_code == 410:
            _disable(endpoint, "gone", sent_at)
        elif endpoint.failure_streak >= config["WEBHOOK_DISABLE_AFTER_FAILURES"]:
            _disable(endpoint, "failure_streak", sent_at)
        if delivery.attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
            delivery.status, delivery.next_attempt_at = "failed", None
            result = "failed"
        else:
            delivery.next_attempt_at = clock + timedelta(seconds=backoff(delivery.attempts))
            result = "retrying"
    db.session.commit()
    return result


def _disable(endpoint, reason, now):
    if endpoint.active:
        endpoint.active, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
        current_app.logger.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
