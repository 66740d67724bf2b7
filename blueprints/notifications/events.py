"""The /notifications namespace: connecting is all a client does here; it joins its own user room and receives a
`notification` event for each in-app notification, once it is committed."""

from blueprints.notifications.schemas import NotificationOut
from pawmanity.core.live import ServerEvent
from pawmanity.identity.sockets import AuthenticatedNamespace


class NotificationsNamespace(AuthenticatedNamespace):
    channel_description = ("In-app notifications as they happen: each one also listed by GET /notifications. "
                           "Connect and listen; there is nothing to send.")
    server_events = {
        "notification": ServerEvent(NotificationOut, "A new in-app notification, as GET /notifications lists it."),
    }
