from flask import request

from blueprints.notifications.schemas import (
    NotificationListQuery,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    PushSubscriptionIn,
    PushSubscriptionOut,
    ReadAllOut,
    VapidKeyOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import PageQuery, page_of
from pawmanity.identity.security import current_actor
from pawmanity.notifications import inbox, push

blp = Blueprint("notifications", __name__, url_prefix=f"{API_PREFIX}/notifications",
                description="Your notifications and how you want to receive them")


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(NotificationListQuery, location="query")
@blp.response(200, page_of(NotificationOut))
def list_notifications(query):
    """Newest first; `?unread=true` for the unread ones."""
    return inbox.list_notifications(current_actor(), **query)


@blp.route("/<uuid:notification_id>/read", methods=["POST"])
@blp.auth_required()
@blp.response(200, NotificationOut)
@blp.errors(404)
def mark_read(notification_id):
    return inbox.mark_read(current_actor(), notification_id)


@blp.route("/read-all", methods=["POST"])
@blp.auth_required()
@blp.response(200, ReadAllOut)
def mark_all_read():
    return {"marked": inbox.mark_all_read(current_actor())}


@blp.route("/preferences", methods=["GET"])
@blp.auth_required()
@blp.response(200, PreferencesOut)
def get_preferences():
    """Per category (appointments, messages, reminders, system) and channel (in_app, email, push)."""
    return inbox.get_preferences(current_actor())


@blp.route("/preferences", methods=["PUT"])
@blp.auth_required()
@blp.arguments(PreferencesIn)
@blp.response(200, PreferencesOut)
@blp.errors(415)
def put_preferences(changes):
    """Change some preferences; what you leave out keeps its setting."""
    return inbox.set_preferences(current_actor(), changes)


@blp.route("/push/key", methods=["GET"])
@blp.response(200, VapidKeyOut)
@blp.errors(503)
def push_key():
    """The server's VAPID public key, for PushManager.subscribe({applicationServerKey})."""
    return {"public_key": push.public_key()}


@blp.route("/push/subscriptions", methods=["POST"])
@blp.auth_required()
@blp.arguments(PushSubscriptionIn)
@blp.response(201, PushSubscriptionOut)
@blp.alt_response(200, schema=PushSubscriptionOut, description="This endpoint was registered already: updated")
@blp.errors(415, 422, 503)
def subscribe_push(subscription):
    """Register this browser for Web Push (the JSON of its PushSubscription). Pushes carry generic text and a
    notification id, never details; the `push` preferences say which categories are pushed."""
    stored, created = push.subscribe(current_actor(), endpoint=subscription["endpoint"],
                                     keys=subscription["keys"], user_agent=request.user_agent.string)
    return stored, 201 if created else 200


@blp.route("/push/subscriptions", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(PushSubscriptionOut))
def list_push_subscriptions(query):
    """Your browsers registered for Web Push."""
    return push.list_subscriptions(current_actor(), **query)


@blp.route("/push/subscriptions/<uuid:subscription_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, PushSubscriptionOut)
@blp.errors(404)
def get_push_subscription(subscription_id):
    return push.get_subscription(current_actor(), subscription_id)


@blp.route("/push/subscriptions/<uuid:subscription_id>", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(404)
def unsubscribe_push(subscription_id):
    """Stop pushing to this browser."""
    push.unsubscribe(current_actor(), subscription_id)
