"""Consultations (a doctor and a patient's guardians talking), their messages, read receipts, reminders and
e-mail preferences."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.extensions import db
from pawmanity.models.base import IdMixin, UTCDateTime, utcnow

NOTIFICATION_CATEGORIES = ("appointments", "messages", "reminders", "system")
NOTIFICATION_CHANNELS = ("in_app", "email")
REMINDER_WINDOWS = ("24h", "1h")


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


class NotificationPreference(db.Model):
    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)


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
