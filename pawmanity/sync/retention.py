"""Tombstones (and the rest of the change log) are kept for SYNC_TOMBSTONE_DAYS; then they are purged, and any
cursor that could still need them is answered 410 so its client resyncs from scratch."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.sync.models import SyncChange, SyncCursor, SyncWatermark
from pawmanity.sync.pull import position_column


def purge(now=None):
    """Delete change-log rows and cursors older than the retention period. Returns (changes, cursors) deleted.

    A row this transaction can see was committed (MVCC hides the others), so any of them may go; the watermark is
    raised past the highest position deleted, in the same transaction, and a cursor whose snapshot started below it
    (one that might still have needed a purged row) is refused from then on."""
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["SYNC_TOMBSTONE_DAYS"])
    postgresql = db.engine.dialect.name == "postgresql"
    position = position_column(postgresql)
    old = SyncChange.changed_at < cutoff
    highest = db.session.scalar(select(func.max(position)).where(old))
    deleted_changes = 0
    if highest is not None:
        watermark = db.session.scalar(select(SyncWatermark).with_for_update())
        if watermark is None:
            watermark = SyncWatermark(id=1, purged_below=0)
            db.session.add(watermark)
        watermark.purged_below = max(watermark.purged_below, highest + 1)
        db.session.flush()
        deleted_changes = db.session.execute(delete(SyncChange).where(old)).rowcount
    deleted_cursors = db.session.execute(delete(SyncCursor).where(SyncCursor.created_at < cutoff)).rowcount
    db.session.commit()
    return deleted_changes, deleted_cursors
