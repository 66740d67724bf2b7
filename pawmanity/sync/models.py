"""The change log the sync reads, the cursors it hands out, and how far the log has been purged.

Rows of `sync_changes` are written by database triggers (see the 0018 migration), never by the application: every
INSERT, UPDATE and DELETE on a synced table is captured whoever makes it (an ORM flush, a bulk `delete()`, raw SQL,
a cascade), so an erasure done elsewhere still leaves its tombstone.
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.extensions import db

OPERATIONS = ("I", "U", "D")


class SyncChange(db.Model):
    """One row written, changed or deleted. `txid` is the writing transaction's 64-bit id on PostgreSQL (what a
    pull delivers is decided against snapshots, see pull.py); SQLite serialises writers, so there `id` alone orders
    the log.
    The scope columns say whose the row is, so a tombstone reaches only those who could have held the row."""

    __tablename__ = "sync_changes"
    __table_args__ = (
        CheckConstraint(f"op IN {OPERATIONS}", name="op_known"),
        Index("ix_sync_changes_txid", "txid"),
        Index("ix_sync_changes_changed_at", "changed_at"),
        # SQLite would otherwise reuse the highest id once the purge deleted it, under a cursor already past it.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    txid: Mapped[int | None] = mapped_column(BigInteger)
    table_name: Mapped[str] = mapped_column(String(32), nullable=False)
    row_id: Mapped[str] = mapped_column(String(40), nullable=False)
    op: Mapped[str] = mapped_column(String(1), nullable=False)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class SyncCursor(db.Model):
    """What one pull handed out: where in the log it stopped and which scopes (patients, consultations...) the caller
    could see then, so the next pull knows what access was lost or gained since. Its id is the opaque cursor."""

    __tablename__ = "sync_cursors"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # PostgreSQL: the xmin of the pull's snapshot, and the snapshot itself (`xmin:xmax:in-progress ids`); SQLite:
    # the next change-log id.
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    snapshot: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)


class SyncWatermark(db.Model):
    """One row: every change below `purged_below` may have been purged, so a cursor before it must resync."""

    __tablename__ = "sync_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    purged_below: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
