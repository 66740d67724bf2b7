"""The audit trail: who did what to which object, when, from where, and how it ended.

Rows are only ever appended, each carrying the SHA-256 of its content and of the row before it, so an edit or a
deletion anywhere breaks the chain that `flask audit verify` walks. Appends are serialised (an advisory lock on
PostgreSQL; SQLite serialises writers itself) and the unique prev_hash makes a fork impossible even so.
An audit row joins the caller's transaction: it is committed, or rolled back, with the change it describes. It is
written at the last moment, just before the commit, so the chain's lock is held for the commit alone rather than
for the whole request.
"""

import hashlib
import json

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from pawmanity.audit.models import GENESIS_HASH, AuditEvent
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db

# Any constant shared by every writer; it names the audit chain's advisory lock.
AUDIT_CHAIN_LOCK = 0x5A3D17

SUCCESS, FAILURE, DENIED = "success", "failure", "denied"


PENDING = "pawmanity.audit"


def record(action, actor, *, object_type=None, object_id=None, outcome=SUCCESS, detail=None):
    """Add one event to the session's transaction; it is appended to the chain when the caller commits."""
    db.session.info.setdefault(PENDING, []).append(dict(
        occurred_at=utcnow(),
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        outcome=outcome,
        ip=actor.ip,
        detail=detail,
    ))


def record_denial(denial, *, request_line, status):
    """Write one `denied` row for a refused access, after the request's own transaction was rolled back."""
    db.session.rollback()
    record("access.denied", denial["actor"], object_type=denial["object_type"], object_id=denial["object_id"],
           outcome=DENIED, detail={"request": request_line, "status": status})
    db.session.commit()


@event.listens_for(Session, "before_commit")
def _append_pending(session):
    entries = session.info.pop(PENDING, None)
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
    prev_hash = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS_HASH
    for entry in entries:
        row = AuditEvent(**entry, prev_hash=prev_hash)
        row.hash = prev_hash = event_hash(row)
        session.add(row)
    session.flush()


@event.listens_for(Session, "after_rollback")
def _discard_pending(session):
    session.info.pop(PENDING, None)


def event_hash(event):
    content = {
        "occurred_at": event.occurred_at.isoformat(),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_role": event.actor_role,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_chain(batch_size=1000):
    """Walk the chain in order. Returns (rows checked, first broken row id or None, reason)."""
    expected_prev = GENESIS_HASH
    checked, last_id = 0, 0
    while True:
        rows = db.session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch_size)
        ).all()
        if not rows:
            return checked, None, None
        for row in rows:
            if row.prev_hash != expected_prev:
                return checked, row.id, "does not link to the row before it (a row was removed or inserted)"
            if event_hash(row) != row.hash:
                return checked, row.id, "content does not match its hash (the row was altered)"
            expected_prev = row.hash
            checked += 1
            last_id = row.id
        db.session.expunge_all()


def list_events_query(*, actor_id=None, action=None, object_type=None, object_id=None, since=None, until=None):
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if actor_id:
        query = query.where(AuditEvent.actor_id == actor_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if since:
        query = query.where(AuditEvent.occurred_at >= since)
    if until:
        query = query.where(AuditEvent.occurred_at < until)
    return query
