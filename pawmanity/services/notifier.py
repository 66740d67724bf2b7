"""The notifier: the one way any part of PAWMANITY tells people something happened.

Plugins call `notify`; it stores an in-app notification per recipient in the caller's transaction. Live delivery
and e-mail build on these rows (the notifications plugin).
"""

from pawmanity.extensions import db
from pawmanity.models import Notification


def notify(user_ids, kind, *, title, body=None, data=None):
    notifications = []
    for user_id in dict.fromkeys(user_ids):  # each recipient once, in order
        notification = Notification(user_id=user_id, kind=kind, title=title, body=body, data=data)
        db.session.add(notification)
        notifications.append(notification)
    return notifications
