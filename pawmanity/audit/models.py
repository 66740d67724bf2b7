"""The audit trail: append-only rows linked by a SHA-256 hash chain."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.extensions import db

GENESIS_HASH = "0" * 64


class AuditEvent(db.Model):
    """One event. A request inserts it without its place in the chain (chain_position, prev_hash and hash NULL);
    the chainer seals it later, once, in the order it takes them: committed rows arrive out of id order, so the
    chain's order is chain_position, not id. Sealing is the only update the database allows (migration 0023)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # The chainer's queue: only the unsealed rows, so it stays a few entries long however long the trail grows.
        Index("ix_audit_events_unchained", "id", postgresql_where=text("chain_position IS NULL"),
              sqlite_where=text("chain_position IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict | None] = mapped_column(JSON)
    # Unique: one row per place in the chain, and two rows can never claim the same predecessor, so the chain cannot
    # fork even if two chainers raced. (hash needs no index of its own: equal hashes would need equal predecessors.)
    chain_position: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    hash: Mapped[str | None] = mapped_column(String(64))
