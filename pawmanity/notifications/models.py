"""In-app notifications, each person's choice of channel per category, and their browsers' push subscriptions."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import IdMixin, UTCDateTime, utcnow
from pawmanity.core.extensions import db

NOTIFICATION_CATEGORIES = ("appointments", "messages", "reminders", "system")
NOTIFICATION_CHANNELS = ("in_app", "email", "push")


class Notification(IdMixin, db.Model):
    """An in-app notification for one user (the notifier service writes these)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_created", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(48), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationPreference(db.Model):
    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)


class PushSubscription(IdMixin, db.Model):
    """One browser's Web Push subscription (PushSubscription.toJSON()): where to send and the keys to encrypt for.

    The endpoint is a capability URL at the browser vendor's push service; `p256dh` (the browser's P-256 public key)
    and `auth` (a 16-byte secret) are what RFC 8291 encrypts each message to. A 404 or 410 from the push service
    means the subscription is gone, and the row goes with it."""

    __tablename__ = "push_subscriptions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    endpoint: Mapped[str] = mapped_column(String(2000), unique=True, nullable=False)
    p256dh: Mapped[str] = mapped_column(String(100), nullable=False)
    auth: Mapped[str] = mapped_column(String(32), nullable=False)
    user_agent: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
