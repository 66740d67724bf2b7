"""Who cares (doctor profiles), when they are available, and the appointments booked with them."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.core.database import IdMixin, TimestampMixin, UTCDateTime, utcnow
from pawmanity.core.encryption.fields import EncryptedField
from pawmanity.core.extensions import db

APPOINTMENT_TYPES = ("video", "chat", "in_person")
APPOINTMENT_STATUSES = ("requested", "confirmed", "in_progress", "completed", "cancelled", "no_show")
# Statuses that hold the doctor's time: two of these may never overlap for one doctor.
ACTIVE_STATUSES = ("requested", "confirmed", "in_progress")


class DoctorProfile(IdMixin, TimestampMixin, db.Model):
    """A physician or veterinarian. Listed and bookable only once an admin has verified them."""

    __tablename__ = "doctor_profiles"
    __table_args__ = (
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes_range"),
        CheckConstraint("buffer_minutes BETWEEN 0 AND 120", name="buffer_minutes_range"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True,
                                               nullable=False)
    specialty: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    license_number = EncryptedField(nullable=False)
    bio: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    slot_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    buffer_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    user = relationship("User")
    species: Mapped[list["DoctorSpecies"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                          order_by="DoctorSpecies.species")
    rules: Mapped[list["AvailabilityRule"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                           order_by="(AvailabilityRule.weekday, "
                                                                    "AvailabilityRule.start_minute)")

    @property
    def species_treated(self):
        return [entry.species for entry in self.species]

    @property
    def verified(self):
        return self.verified_at is not None

    def hold_for_review(self):
        """Unverify (unlisted and unbookable until an admin verifies again); True if it had been verified."""
        was_verified = self.verified_at is not None
        self.verified_at, self.verified_by = None, None
        return was_verified


class DoctorSpecies(db.Model):
    __tablename__ = "doctor_species"

    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctor_profiles.id", ondelete="CASCADE"),
                                                 primary_key=True)
    species: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)


class AvailabilityRule(db.Model):
    """A weekly window in the doctor's own timezone: weekday (0 = Monday) and minutes after local midnight."""

    __tablename__ = "availability_rules"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
                        name="window_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctor_profiles.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    weekday: Mapped[int] = mapped_column(Integer, nullable=False)
    start_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    end_minute: Mapped[int] = mapped_column(Integer, nullable=False)


class TimeOff(IdMixin, db.Model):
    __tablename__ = "time_off"
    __table_args__ = (CheckConstraint("start_at < end_at", name="interval_valid"),)

    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctor_profiles.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Appointment(IdMixin, TimestampMixin, db.Model):
    """A booked slot. Overlaps between active appointments of one doctor are refused by the database itself
    (an exclusion constraint on PostgreSQL, a trigger on SQLite): see the migration."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(f"type IN {APPOINTMENT_TYPES}", name="type_known"),
        CheckConstraint(f"status IN {APPOINTMENT_STATUSES}", name="status_known"),
        CheckConstraint("start_at < end_at", name="interval_valid"),
        Index("ix_appointments_doctor_start", "doctor_id", "start_at"),
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
    )

    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctor_profiles.id", ondelete="RESTRICT"),
                                                 nullable=False)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), nullable=False)
    booked_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False,
                                                 index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="requested")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    late_cancellation: Mapped[bool] = mapped_column(default=False, nullable=False)

    doctor: Mapped[DoctorProfile] = relationship()
    patient = relationship("Patient")
    events: Mapped[list["AppointmentEvent"]] = relationship(order_by="AppointmentEvent.id",
                                                            cascade="all, delete-orphan")


class AppointmentEvent(db.Model):
    """The appointment's history: each status change and reschedule, by whom and when."""

    __tablename__ = "appointment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"),
                                                      nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    from_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    to_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))
