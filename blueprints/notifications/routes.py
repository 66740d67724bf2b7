from blueprints.notifications.schemas import (
    NotificationListQuery,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    ReadAllOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor
from pawmanity.notifications import inbox

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
    """Per category (appointments, messages, reminders, system) and channel (in_app, email)."""
    return inbox.get_preferences(current_actor())


@blp.route("/preferences", methods=["PUT"])
@blp.auth_required()
@blp.arguments(PreferencesIn)
@blp.response(200, PreferencesOut)
@blp.errors(415)
def put_preferences(changes):
    """Change some preferences; what you leave out keeps its setting."""
    return inbox.set_preferences(current_actor(), changes)
