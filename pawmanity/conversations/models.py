"""Consultations (a doctor and a patient's guardians talking), their messages and read receipts, and the video
sessions that carry a consultation's calls."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.core.database import IdMixin, UTCDateTime, utcnow
from pawmanity.core.extensions import db


class Consultation(IdMixin, db.Model):
    __tablename__ = "consultations"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id", ondelete="RESTRICT"),
                                                      unique=True, nullable=False)
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctor_profiles.id", ondelete="RESTRICT"),
                                                 nullable=False, index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), nullable=False,
                                                  index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    summary: Mapped[str | None] = mapped_column(Text)
    diagnosis: Mapped[str | None] = mapped_column(Text)
    # Messages are numbered under a lock on this row, so their order is the order they were committed in.
    message_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    appointment = relationship("Appointment")
    doctor = relationship("DoctorProfile")
    patient = relationship("Patient")

    @property
    def active(self):
        return self.ended_at is None


class Message(IdMixin, db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("consultation_id", "seq", name="uq_messages_consultation_seq"),
        # The same client_id from the same sender is the same message: retries after a lost ack store once.
        UniqueConstraint("consultation_id", "sender_id", "client_id", name="uq_messages_client_id"),
    )

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"),
                                                       nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    attachment_ids: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ReadReceipt(db.Model):
    """How far each participant has read, as a message sequence number."""

    __tablename__ = "read_receipts"

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"),
                                                       primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # The last unread message already summarised by e-mail, so a digest never repeats itself.
    emailed_seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


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
