"""A user's own notifications and preferences."""

from sqlalchemy import select, update

from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification, NotificationPreference
from pawmanity.notifications.notifier import preferences_for


def list_notifications(actor, *, page, per_page, unread=None):
    query = select(Notification).where(Notification.user_id == actor.user_id) \
        .order_by(Notification.created_at.desc(), Notification.id)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    return paginate(query, page=page, per_page=per_page)


def mark_read(actor, notification_id):
    notification = db.session.scalar(select(Notification).where(Notification.id == notification_id,
                                                                Notification.user_id == actor.user_id))
    if notification is None:
        raise NotFound("No such notification.")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.commit()
    return notification


def mark_all_read(actor):
    result = db.session.execute(update(Notification).where(
        Notification.user_id == actor.user_id, Notification.read_at.is_(None)).values(read_at=utcnow()))
    db.session.commit()
    return result.rowcount


def get_preferences(actor):
    wanted = preferences_for([actor.user_id])[actor.user_id]
    categories = {}
    for (category, channel), enabled in wanted.items():
        categories.setdefault(category, {})[channel] = enabled
    return categories


def set_preferences(actor, changes):
    """`changes`: {category: {channel: bool}}; what is not named keeps its setting."""
    for category, channels in changes.items():
        for channel, enabled in channels.items():
            row = db.session.get(NotificationPreference, (actor.user_id, category, channel))
            if row is None:
                db.session.add(NotificationPreference(user_id=actor.user_id, category=category, channel=channel,
                                                      enabled=enabled))
            else:
                row.enabled = enabled
    db.session.commit()
    return get_preferences(actor)
