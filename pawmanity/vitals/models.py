"""Vital-sign observations, the devices that send them, alert rules, their per-patient evaluation state and alerts."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import IdMixin, UTCDateTime, utcnow
from pawmanity.core.extensions import db

SOURCE_KINDS = ("device", "user")
DIRECTIONS = ("above", "below")


class Device(IdMixin, db.Model):
    """A device registered to one patient. Its token is shown once; only the SHA-256 is kept."""

    __tablename__ = "vital_devices"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False,
                                                  index=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    registered_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Observation(db.Model):
    """One reading, in its measurement's canonical UCUM unit. (patient, source, sample id) is the reading's identity:
    sending it again updates it only with a higher version."""

    __tablename__ = "vital_observations"
    __table_args__ = (
        UniqueConstraint("patient_id", "source_id", "sample_id", name="uq_vital_observations_sample"),
        # Every query is one patient's one measurement over a time window: this index answers it in order.
        Index("ix_vital_observations_series", "patient_id", "measurement", "taken_at"),
        CheckConstraint(f"source_kind IN {SOURCE_KINDS}", name="source_kind_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False)
    measurement: Mapped[str] = mapped_column(String(24), nullable=False)
    loinc: Mapped[str] = mapped_column(String(16), nullable=False)
    unit: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    source_kind: Mapped[str] = mapped_column(String(8), nullable=False)
    # The device's id, or the user's id for readings entered by hand.
    source_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    sample_id: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class HourlyRollup(db.Model):
    """count, sum, min and max of one patient's readings of one measurement in one UTC hour, recomputed from the
    readings in the transaction that writes them: a year's chart reads 8,760 of these instead of 525,600 readings."""

    __tablename__ = "vital_hourly_rollups"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    measurement: Mapped[str] = mapped_column(String(24), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the hour's start, in seconds since 1970 (UTC)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[float] = mapped_column(Float, nullable=False)
    minimum: Mapped[float] = mapped_column(Float, nullable=False)
    maximum: Mapped[float] = mapped_column(Float, nullable=False)


class AlertRule(IdMixin, db.Model):
    """A threshold for one measurement: for a species, or for one patient (overriding the species rule with the same
    measurement and direction). It opens when readings stay beyond `threshold` for `min_duration_seconds` and
    resolves only once a reading is back past `clear_threshold` (hysteresis)."""

    __tablename__ = "vital_alert_rules"
    __table_args__ = (
        CheckConstraint(f"direction IN {DIRECTIONS}", name="direction_known"),
        CheckConstraint("(species IS NULL) <> (patient_id IS NULL)", name="species_or_patient"),
        CheckConstraint("min_duration_seconds >= 0", name="duration_not_negative"),
        Index("uq_vital_alert_rules_species", "species", "measurement", "direction", unique=True,
              sqlite_where=sql_text("patient_id IS NULL"), postgresql_where=sql_text("patient_id IS NULL")),
        Index("uq_vital_alert_rules_patient", "patient_id", "measurement", "direction", unique=True,
              sqlite_where=sql_text("patient_id IS NOT NULL"), postgresql_where=sql_text("patient_id IS NOT NULL")),
    )

    species: Mapped[str | None] = mapped_column(String(16))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    measurement: Mapped[str] = mapped_column(String(24), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    clear_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    min_duration_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AlertState(db.Model):
    """Where a rule's evaluation stands for one patient: since when the readings have been beyond the threshold,
    and up to which reading time they have been looked at."""

    __tablename__ = "vital_alert_states"

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vital_alert_rules.id", ondelete="CASCADE"),
                                               primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    breach_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluated_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Alert(IdMixin, db.Model):
    __tablename__ = "vital_alerts"
    __table_args__ = (
        # One open alert per rule and patient, however many batches race.
        Index("uq_vital_alerts_open", "rule_id", "patient_id", unique=True,
              sqlite_where=sql_text("resolved_at IS NULL"), postgresql_where=sql_text("resolved_at IS NULL")),
        Index("ix_vital_alerts_patient_opened", "patient_id", "opened_at"),
    )

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vital_alert_rules.id", ondelete="CASCADE"),
                                               nullable=False)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False)
    measurement: Mapped[str] = mapped_column(String(24), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    opening_value: Mapped[float] = mapped_column(Float, nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    @property
    def status(self):
        return "resolved" if self.resolved_at else "open"
