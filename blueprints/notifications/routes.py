from blueprints.notifications.schemas import (
    NotificationListQuery, NotificationOut, PreferencesIn, PreferencesOut, ReadAllOut,
)
from pawmanity.api import API_PREFIX, Blueprint
from pawmanity.schemas import page_of
from pawmanity.security import current_actor
from pawmanity.services import notifications

blp = Blueprint("notifications", __name__, url_prefix=f"{API_PREFIX}/notifications",
                description="Your notifications and how you want to receive them")


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(NotificationListQuery, location="query")
@blp.response(200, page_of(NotificationOut))
def list_notifications(query):
    """Newest first; `?unread=true` for the unread ones."""
    return notifications.list_notifications(current_actor(), **query)


@blp.route("/<uuid:notification_id>/read", methods=["POST"])
@blp.auth_required()
@blp.response(200, NotificationOut)
@blp.errors(404)
def mark_read(notification_id):
    return notifications.mark_read(current_actor(), notification_id)


@blp.route("/read-all", methods=["POST"])
@blp.auth_required()
@blp.response(200, ReadAllOut)
def mark_all_read():
    return {"marked": notifications.mark_all_read(current_actor())}


@blp.route("/preferences", methods=["GET"])
@blp.auth_required()
@blp.response(200, PreferencesOut)
def get_preferences():
    """Per category (appointments, messages, reminders, system) and channel (in_app, email)."""
    return notifications.get_preferences(current_actor())


@blp.route("/preferences", methods=["PUT"])
@blp.auth_required()
@blp.arguments(PreferencesIn)
@blp.response(200, PreferencesOut)
@blp.errors(415)
def put_preferences(changes):
    """Change some preferences; what you leave out keeps its setting."""
    return notifications.set_preferences(current_actor(), changes)
