"""Exports waiting to be downloaded, the erasure log, and the clinical records held apart after an erasure."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import IdMixin, UTCDateTime, utcnow
from pawmanity.core.extensions import db

EXPORT_SUBJECTS = ("patient", "user")
EXPORT_STATUSES = ("pending", "ready", "failed", "expired")
ERASURE_SUBJECTS = ("patient", "user")


class DataExport(IdMixin, db.Model):
    """One requested archive. Only its owner may download it, and only until `expires_at`; the file is then deleted."""

    __tablename__ = "data_exports"
    __table_args__ = (
        CheckConstraint(f"subject_type IN {EXPORT_SUBJECTS}", name="subject_type_known"),
        CheckConstraint(f"status IN {EXPORT_STATUSES}", name="status_known"),
        Index("ix_data_exports_status_expires", "status", "expires_at"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                                index=True)
    subject_type: Mapped[str] = mapped_column(String(8), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default="pending")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The archive's file name under EXPORT_DIR: random, never derived from the subject.
    archive_name: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))


class Erasure(IdMixin, db.Model):
    """The erasure log: what was done, in counts per table, never the erased data itself. `subject_id` is the
    erased row's random id, which no longer leads to anyone once the restricted records are purged."""

    __tablename__ = "erasures"
    __table_args__ = (CheckConstraint(f"subject_type IN {ERASURE_SUBJECTS}", name="subject_type_known"),)

    subject_type: Mapped[str] = mapped_column(String(8), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    requested_by_role: Mapped[str | None] = mapped_column(String(16))
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # {"deleted": {table: n}, "pseudonymised": {table: n}, "files_deleted": n, "restricted": {table: n}}
    actions: Mapped[dict] = mapped_column(JSON, nullable=False)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RestrictedRecord(IdMixin, db.Model):
    """A patient's clinical records, held apart under a retention duty after an erasure: out of every API but the
    audited admin read, purged by `flask privacy purge` once `retain_until` has passed."""

    __tablename__ = "restricted_records"

    erasure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("erasures.id", ondelete="RESTRICT"), nullable=False,
                                                  index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    restricted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # {"bundle": a FHIR collection Bundle (identifiers removed), "records": what FHIR does not carry yet}
    content: Mapped[dict] = mapped_column(JSON, nullable=False)
