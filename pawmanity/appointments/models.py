"""Reminder deliveries (the claim that makes each appointment reminder go out exactly once) and the secret calendar
feed URLs calendar apps subscribe to."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.extensions import db

REMINDER_WINDOWS = ("24h", "1h")


class ReminderDelivery(db.Model):
    """One row per appointment and reminder window: its existence is the claim that makes a reminder go out once."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (UniqueConstraint("appointment_id", "window", name="uq_reminder_deliveries_window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"),
                                                      nullable=False)
    window: Mapped[str] = mapped_column(String(8), nullable=False)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    recipients: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class CalendarFeed(db.Model):
    """One subscribable feed URL per account. Only a SHA-256 of its secret is kept: the URL is shown once, rotating
    replaces it, revoking deletes the row."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
