"""Web Push: the open protocol every browser's push service speaks (RFC 8030), messages encrypted to the browser's
keys (RFC 8291, aes128gcm) and signed by this server's VAPID key (RFC 8292), sent with `pywebpush`.

A push carries generic text, the category and the in-app notification's id, never what happened: the browser
shows "An appointment changed" and the app fetches the details over the API, signed in.

The VAPID key pair comes from PAWMANITY_VAPID_PRIVATE_KEY (PEM, or the base64url raw/DER forms `vapid --gen` and
the web-push tools print). Outside production, without one, a key pair is generated once into the instance folder;
production without one does not offer push (503 `push_not_configured`): every server and worker must sign with the
same key, since browsers bind their subscriptions to it.

Subscription endpoints are user input that the worker will POST to, so only the push services' own hosts
(PAWMANITY_PUSH_SERVICE_HOSTS) over HTTPS are accepted, and redirects are not followed.
"""

import base64
import binascii
import json
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select

from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import DomainError, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.notifications.models import PushSubscription

# What a push says, by category: enough to make someone open the app, nothing about their health.
GENERIC_TEXT = {
    "appointments": "An appointment changed.",
    "messages": "You have new messages.",
    "reminders": "You have an appointment coming up.",
    "system": "You have a new notification.",
}
DEV_KEY_FILE = "vapid_private_key.pem"


class PushUnavailable(DomainError):
    status, code = 503, "push_not_configured"


class PushRetryLater(Exception):
    """The push service is busy or failing (429, 5xx): try again later."""

    def __init__(self, status, retry_after=None):
        super().__init__(f"push service answered {status}")
        self.status = status
        self.retry_after = retry_after


# -- the server's VAPID key ------------------------------------------------------------------------------------------


def vapid_key():
    """This server's VAPID key (py_vapid), loaded once per app."""
    key = current_app.extensions.get("pawmanity.vapid")
    if key is None:
        key = current_app.extensions["pawmanity.vapid"] = _load_vapid_key()
    return key


def _load_vapid_key():
    configured = (current_app.config.get("VAPID_PRIVATE_KEY") or "").strip()
    if configured:
        return _vapid_from_text(configured)
    if not current_app.config.get("VAPID_GENERATE_DEV_KEY"):
        raise PushUnavailable("Web Push is not configured on this server (PAWMANITY_VAPID_PRIVATE_KEY).")
    path = Path(current_app.config["INSTANCE_DIR"]) / DEV_KEY_FILE
    if not path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # owner-only, and never over a key another process wrote first
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
                file.write(pem)
            current_app.logger.info("generated a development VAPID key pair in %s", path)
        except FileExistsError:
            pass
    return _vapid_from_text(path.read_text())


def _vapid_from_text(text):
    if "-----BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
        vapid = Vapid()
        vapid.private_key = key
        return vapid
    return Vapid.from_string(text)


def public_key():
    """The applicationServerKey browsers subscribe with: the uncompressed P-256 point, base64url without padding."""
    raw = vapid_key().public_key.public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    return _b64url(raw)


# -- subscriptions ---------------------------------------------------------------------------------------------------


def subscribe(actor, *, endpoint, keys, user_agent=None):
    """Store the caller's browser subscription; returns (subscription, created). The same endpoint again updates
    it, and moves it to the caller if another account had it (the browser's last sign-in owns the device)."""
    vapid_key()  # no subscriptions the server could never send to
    check_endpoint(endpoint)
    p256dh, auth = _check_keys(keys)
    subscription = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint)
                                     .with_for_update())
    created = subscription is None
    if created:
        subscription = PushSubscription(endpoint=endpoint)
        db.session.add(subscription)
    subscription.user_id = actor.user_id
    subscription.p256dh, subscription.auth = p256dh, auth
    subscription.user_agent = (user_agent or "")[:256] or None
    db.session.flush()
    _keep_newest(actor.user_id)
    db.session.commit()
    return subscription, created


def _keep_newest(user_id):
    limit = current_app.config["PUSH_MAX_SUBSCRIPTIONS_PER_USER"]
    stale = db.session.scalars(select(PushSubscription.id).where(PushSubscription.user_id == user_id)
                               .order_by(PushSubscription.created_at.desc(), PushSubscription.id)
                               .offset(limit)).all()
    if stale:
        db.session.execute(delete(PushSubscription).where(PushSubscription.id.in_(stale)))


def list_subscriptions(actor, *, page, per_page):
    query = select(PushSubscription).where(PushSubscription.user_id == actor.user_id) \
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id)
    return paginate(query, page=page, per_page=per_page)


def get_subscription(actor, subscription_id):
    subscription = db.session.scalar(select(PushSubscription).where(PushSubscription.id == subscription_id,
                                                                    PushSubscription.user_id == actor.user_id))
    if subscription is None:
        raise NotFound("No such push subscription.")
    return subscription


def unsubscribe(actor, subscription_id):
    removed = db.session.execute(delete(PushSubscription).where(PushSubscription.id == subscription_id,
                                                                PushSubscription.user_id == actor.user_id)).rowcount
    db.session.commit()
    if not removed:
        raise NotFound("No such push subscription.")


def check_endpoint(endpoint):
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise _invalid("endpoint", "Use the https:// endpoint of the browser's push subscription.") from None
    allow_http = current_app.config["PUSH_ALLOW_HTTP_ENDPOINTS"]
    if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not host or parts.username \
            or parts.password:
        raise _invalid("endpoint", "Use the https:// endpoint of the browser's push subscription.")
    if not any(host == allowed or host.endswith("." + allowed)
               for allowed in current_app.config["PUSH_SERVICE_HOSTS"]):
        # The deployment's list of push services, not something the OpenAPI document can state: its own code.
        raise InvalidInput("The push subscription is not valid.", code="unknown_push_service",
                           errors={"endpoint": ["This is not the address of a known push service."]})


def _check_keys(keys):
    # The document states the keys' alphabet (base64url); whether they are a P-256 point and a 16-byte secret is
    # a domain refusal with its own code.
    p256dh, auth = keys["p256dh"].strip(), keys["auth"].strip()
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(p256dh))
    except (ValueError, binascii.Error):
        raise InvalidInput("The push subscription is not valid.", code="invalid_push_keys", errors={
            "keys.p256dh": ["Not a P-256 public key (base64url, uncompressed point)."]}) from None
    try:
        auth_ok = len(_b64url_decode(auth)) == 16
    except (ValueError, binascii.Error):
        auth_ok = False
    if not auth_ok:
        raise InvalidInput("The push subscription is not valid.", code="invalid_push_keys", errors={
            "keys.auth": ["Not a 16-byte authentication secret (base64url)."]})
    return p256dh, auth


def _invalid(field, message):
    return InvalidInput("The push subscription is not valid.", errors={field: [message]})


# -- sending ---------------------------------------------------------------------------------------------------------


def subscriptions_of(user_ids):
    """(subscription id, user id) for every subscription of these users whose accounts are active."""
    if not user_ids:
        return []
    return db.session.execute(select(PushSubscription.id, PushSubscription.user_id)
                              .join(User, User.id == PushSubscription.user_id)
                              .where(PushSubscription.user_id.in_(user_ids), User.active.is_(True))).all()


def message(category, notification_id=None):
    return {"title": "PAWMANITY", "body": GENERIC_TEXT.get(category, GENERIC_TEXT["system"]), "category": category,
            "notification_id": str(notification_id) if notification_id else None}


def deliver(subscription_id, payload):
    """Send one push. Returns "sent", "removed" (the push service said 404/410: the subscription is deleted),
    "missing" (deleted meanwhile) or "refused" (another 4xx, logged); raises PushRetryLater on 429 and 5xx."""
    subscription = db.session.get(PushSubscription, uuid.UUID(subscription_id))
    if subscription is None:
        return "missing"
    config = current_app.config
    endpoint = subscription.endpoint
    parts = urlsplit(endpoint)
    claims = {"sub": config["VAPID_SUBJECT"], "aud": f"{parts.scheme}://{parts.netloc}",
              "exp": int(time.time()) + config["VAPID_TOKEN_SECONDS"]}
    info = {"endpoint": endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
    db.session.commit()  # no transaction held open across the network call
    with requests.Session() as session:
        session.max_redirects = 0
        try:
            webpush(info, data=json.dumps(payload, separators=(",", ":")), vapid_private_key=vapid_key(),
                    vapid_claims=claims, ttl=config["PUSH_TTL_SECONDS"], timeout=config["PUSH_TIMEOUT_SECONDS"],
                    headers={"Urgency": "normal"}, requests_session=session)
        except WebPushException as error:
            return _failed(subscription_id, error.status_code, error.retry_after)
        except requests.TooManyRedirects:
            current_app.logger.warning("push service redirected (not followed); subscription %s", subscription_id)
            return "refused"
    db.session.execute(PushSubscription.__table__.update().where(PushSubscription.id == uuid.UUID(subscription_id))
                       .values(last_sent_at=utcnow()))
    db.session.commit()
    return "sent"


def _failed(subscription_id, status, retry_after):
    if status in (404, 410):
        # This subscription is gone (unsubscribed, expired, browser data cleared); the user's others stay.
        db.session.execute(delete(PushSubscription).where(PushSubscription.id == uuid.UUID(subscription_id)))
        db.session.commit()
        current_app.logger.info("push subscription %s removed: the push service answered %s", subscription_id,
                                status)
        return "removed"
    if status is None or status == 429 or status >= 500:
        raise PushRetryLater(status, retry_after)
    current_app.logger.warning("push service refused a message with %s; subscription %s", status, subscription_id)
    return "refused"


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
