"""Video sessions bound to video appointments: single-use join tokens and who was there when."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.extensions import db
from pawmanity.models.base import IdMixin, UTCDateTime, utcnow

VIDEO_STATUSES = ("open", "ended")


class VideoSession(IdMixin, db.Model):
    __tablename__ = "video_sessions"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id", ondelete="RESTRICT"),
                                                      unique=True, nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False, default="webrtc")
    room: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default="open")
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    first_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    appointment = relationship("Appointment")
    attendance: Mapped[list["VideoAttendance"]] = relationship(order_by="VideoAttendance.joined_at",
                                                               viewonly=True)

    @property
    def duration_seconds(self):
        if self.first_joined_at is None or self.ended_at is None:
            return None
        return int((self.ended_at - self.first_joined_at).total_seconds())


class VideoJoinToken(db.Model):
    """A short-lived, single-use permission for one user to join one session. Only its hash is stored."""

    __tablename__ = "video_join_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_sessions.id", ondelete="CASCADE"),
                                                  nullable=False, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VideoAttendance(db.Model):
    """Each time a participant was in the call: joins and leaves, for the record."""

    __tablename__ = "video_attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_sessions.id", ondelete="CASCADE"),
                                                  nullable=False, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
