"""The notifier: the one way any part of PAWMANITY tells people something happened.

`notify` stores an in-app notification per recipient (pushed live on /notifications once committed), queues a Web
Push to each of their browsers and, for the kinds that warrant it, an e-mail, each as the recipient's preferences
allow. E-mails carry what happened and when, never clinical details: callers pass titles and bodies fit for an
inbox. Pushes carry less still: generic text per category and the notification's id (notifications/push.py).
"""

from sqlalchemy import select

from pawmanity.core import live
from pawmanity.core.database import on_commit
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.notifications import push
from pawmanity.notifications.models import (
    NOTIFICATION_CATEGORIES,
    NOTIFICATION_CHANNELS,
    Notification,
    NotificationPreference,
)
from pawmanity.notifications.tasks import send_email, send_push

EMAILED_KINDS = {
    "appointment.booked", "appointment.confirmed", "appointment.cancelled", "appointment.rescheduled",
    "reminder.24h", "reminder.1h", "message.digest", "ai.urgent",
}
DEFAULTS = {(category, channel): True for category in NOTIFICATION_CATEGORIES for channel in NOTIFICATION_CHANNELS}


def category_of(kind):
    prefix = kind.split(".", 1)[0]
    return {"appointment": "appointments", "message": "messages", "reminder": "reminders"}.get(prefix, "system")


def notify(user_ids, kind, *, title, body=None, data=None):
    """Tell each user once, in the caller's transaction. Returns the in-app notifications created."""
    recipients = list(dict.fromkeys(user_ids))
    if not recipients:
        return []
    category = category_of(kind)
    emailed = kind in EMAILED_KINDS
    # For an e-mailed kind the recipients' accounts come with their preferences, in one statement.
    wanted, accounts = _preferences_and_accounts(recipients) if emailed else (preferences_for(recipients), [])
    created = []
    for user_id in recipients:
        if wanted[user_id][(category, "in_app")]:
            notification = Notification(user_id=user_id, kind=kind, title=title, body=body, data=data)
            db.session.add(notification)
            created.append(notification)
    db.session.flush()
    for notification in created:
        live.emit_after_commit("notification", serialize(notification), namespace=live.NOTIFICATIONS,
                               room=live.user_room(notification.user_id))
    queue_pushes([user_id for user_id in recipients if wanted[user_id][(category, "push")]], category,
                 {notification.user_id: notification.id for notification in created})
    for user in accounts:
        if user.active and wanted[user.id][(category, "email")]:
            queue_email(user.email, title, body or title)
    return created


def queue_email(to, subject, body):
    on_commit(lambda: send_email.delay(to=to, subject=f"PAWMANITY: {subject}", body=body))


def queue_pushes(user_ids, category, notification_ids):
    """After the commit, one push per subscription of these users (each retried and pruned on its own)."""
    for subscription_id, user_id in push.subscriptions_of(user_ids):
        payload = push.message(category, notification_ids.get(user_id))
        on_commit(lambda sid=str(subscription_id), payload=payload: send_push.delay(subscription_id=sid,
                                                                                    payload=payload))


def preferences_for(user_ids):
    found = {user_id: dict(DEFAULTS) for user_id in user_ids}
    rows = db.session.scalars(select(NotificationPreference).where(NotificationPreference.user_id.in_(user_ids)))
    for row in rows:
        found[row.user_id][(row.category, row.channel)] = row.enabled
    return found


def _preferences_and_accounts(user_ids):
    """preferences_for(user_ids), and the users themselves (whole: the address is decrypted from its row, see
    core/encryption/fields.py): each user's row once per preference it set, or once with none."""
    found = {user_id: dict(DEFAULTS) for user_id in user_ids}
    accounts = {}
    for user, preference in db.session.execute(
            select(User, NotificationPreference).outerjoin(NotificationPreference,
                                                           NotificationPreference.user_id == User.id)
            .where(User.id.in_(user_ids))):
        accounts[user.id] = user
        if preference is not None:
            found[user.id][(preference.category, preference.channel)] = preference.enabled
    return found, list(accounts.values())


def serialize(notification):
    return {"id": str(notification.id), "kind": notification.kind, "title": notification.title,
            "body": notification.body, "data": notification.data,
            "created_at": notification.created_at.isoformat().replace("+00:00", "Z"), "read_at": None}
