"""The audit trail: who did what to which object, when, from where, and how it ended.

Rows are only ever appended, each carrying the SHA-256 of its content and of the row before it, so an edit or a
deletion anywhere breaks the chain that `flask audit verify` walks.

An audit row joins the caller's transaction: it is committed, or rolled back, with the change it describes. On
PostgreSQL the request only inserts it, unsealed (no place in the chain, no hashes): one statement, no lock, no read,
so auditing requests no longer queue behind one lock held through every commit. A chainer then seals the committed
rows in batches, as the sequencer of a verifiable log does (Trillian's queues unsequenced leaves and integrates them
in batches): holding an advisory lock, it takes the unsealed rows in id order, gives each the next chain position
and its prev_hash and hash, and writes them in one UPDATE. Rows commit out of id order, so the chain's order is the
chainer's (chain_position), never the id. It runs in the background soon after an auditing commit (under gevent
AUDIT_CHAIN_DELAY_MS later, after the response; at most one per process at a time, commits meanwhile coalesce into
its next round), and every minute from Celery beat for what a crash left behind; `verify_chain` names rows left
unsealed for too long. Without a green loop (the CLI, a Celery worker) it runs at once, in the committing thread.

SQLite (`make run`, tests without PostgreSQL) serialises writers itself, so there each row is sealed at commit.
"""

import hashlib
import json
import logging
import threading
import time
from datetime import timedelta
from typing import NamedTuple

from flask import current_app, has_app_context
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.orm import Session

from pawmanity.audit.models import GENESIS_HASH, AuditEvent
from pawmanity.core.database import utcnow
from pawmanity.core.errors import dependency_failure
from pawmanity.core.extensions import db
from pawmanity.core.offload import after_response, green_loop

log = logging.getLogger(__name__)

# Any constant shared by every chainer; it names the audit chain's advisory lock.
AUDIT_CHAIN_LOCK = 0x5A3D17
CHAIN_BATCH = 500
# When another process's chainer holds the lock it may already have read the queue without our rows: look again.
BUSY_RETRIES, BUSY_PAUSE_SECONDS = 3, 0.02

SUCCESS, FAILURE, DENIED = "success", "failure", "denied"


PENDING = "pawmanity.audit"
UNSEALED = "pawmanity.audit.unsealed"

_table = AuditEvent.__table__
# Inline: the id comes from the column's default in the statement itself, not from a RETURNING or a nextval
# beforehand (nobody reads it back), so this is the request's one audit statement for any number of events. Built
# once: every audited request runs it.
_INSERT_UNSEALED = insert(_table).inline()


def record(action, actor, *, object_type=None, object_id=None, outcome=SUCCESS, detail=None):
    """Add one event to the session's transaction; it is written when the caller commits."""
    session = db.session()
    if not session.in_transaction():
        # Begun now, so that a rollback before any statement is still a rollback that discards the event (a session
        # with no transaction ignores rollback() and would carry the event into its next commit).
        session.begin()
    session.info.setdefault(PENDING, []).append(dict(
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
        session.execute(_INSERT_UNSEALED, entries)
        session.info[UNSEALED] = True
    else:
        _append_sealed(session, entries)


def _append_sealed(session, entries):
    # SQLite takes its one write lock at the first write of a transaction: the unique chain_position and prev_hash
    # refuse the loser of a race between two writers, as they would a second chainer on PostgreSQL.
    position, prev_hash = session.execute(_chain_tail()).first() or (0, GENESIS_HASH)
    rows = [AuditEvent(**entry) for entry in entries]
    for row, link in zip(rows, _links(rows, position, prev_hash)):
        row.chain_position, row.prev_hash, row.hash = link
    session.add_all(rows)
    session.flush()


def _links(events, position, prev_hash):
    """(chain position, prev_hash, hash) of each event in turn, extending the chain whose tail is given."""
    for entry in events:
        position += 1
        digest = event_hash(entry, prev_hash=prev_hash)
        yield position, prev_hash, digest
        prev_hash = digest


@event.listens_for(Session, "after_commit")
def _seal_soon(session):
    if session.info.pop(UNSEALED, False) and has_app_context() \
            and current_app.config.get("AUDIT_CHAIN_AFTER_COMMIT", True):
        request_chaining()


@event.listens_for(Session, "after_rollback")
def _discard_pending(session):
    session.info.pop(PENDING, None)
    session.info.pop(UNSEALED, None)


def _chain_tail():
    return (select(AuditEvent.chain_position, AuditEvent.hash).where(AuditEvent.chain_position.is_not(None))
            .order_by(AuditEvent.chain_position.desc()).limit(1))


def _queue(batch_size):
    tail = _chain_tail().subquery()
    return (select(_table, select(tail.c.chain_position).scalar_subquery().label("tail_position"),
                   select(tail.c.hash).scalar_subquery().label("tail_hash"))
            .where(AuditEvent.chain_position.is_(None)).order_by(AuditEvent.id).limit(batch_size))


# One UPDATE for the whole batch: the positions and hashes travel as four arrays. `chain_position IS NULL` keeps a
# sealed row sealed even if the lock were ever bypassed; the unique constraints are the last word.
_SEAL = text("""
    UPDATE audit_events AS event
    SET chain_position = sealed.place, prev_hash = sealed.prev_hash, hash = sealed.hash
    FROM unnest(CAST(:ids AS bigint[]), CAST(:places AS bigint[]), CAST(:prev_hashes AS varchar[]),
                CAST(:hashes AS varchar[])) AS sealed(id, place, prev_hash, hash)
    WHERE event.id = sealed.id AND event.chain_position IS NULL
""")


class ChainerBusy(Exception):
    """Another chainer holds the chain's lock."""


def chain_pending(*, wait=False, batch_size=CHAIN_BATCH):
    """Seal every committed unsealed row, oldest id first; returns how many it sealed.

    `wait=False` (after a commit) skips with ChainerBusy when another chainer holds the lock, rather than queueing
    behind it; `wait=True` (Celery beat, the CLI) waits its turn. On SQLite rows are sealed at commit: nothing to do.
    """
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return 0
    sealed = 0
    while True:
        with engine.begin() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
            elif not conn.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": AUDIT_CHAIN_LOCK}):
                raise ChainerBusy
            # Read after the lock is ours (a statement of its own, with a snapshot taken after it), so it sees
            # everything the previous holder committed: the queue and, beside each row, the chain's tail.
            rows = conn.execute(_queue(batch_size)).all()
            if not rows:
                return sealed
            links = _links(rows, rows[0].tail_position or 0, rows[0].tail_hash or GENESIS_HASH)
            places, prev_hashes, hashes = (list(column) for column in zip(*links))
            done = conn.execute(_SEAL, {"ids": [row.id for row in rows], "places": places,
                                        "prev_hashes": prev_hashes, "hashes": hashes}).rowcount
            if done != len(rows):  # cannot happen under the lock; refuse to leave a gap in the chain if it does
                raise RuntimeError(f"sealed {done} of {len(rows)} audit rows; the chain was not extended")
        sealed += len(rows)
        if len(rows) < batch_size:
            return sealed


class _Chaining:
    """At most one chainer per process: a commit while it runs asks for one more round instead of a second one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.again = False


_chaining = _Chaining()


def request_chaining():
    """Seal what was just committed, soon: after the response under gevent or eventlet, else at once."""
    with _chaining.lock:
        if _chaining.running:
            _chaining.again = True
            return
        _chaining.running = True
    try:
        after_response(_chain_until_idle)
    except BaseException:
        with _chaining.lock:
            _chaining.running = False
        raise


def _chain_until_idle():
    busy = 0
    try:
        if green_loop():
            # Commits arriving meanwhile join this round: under load one round seals many requests' events.
            time.sleep(current_app.config.get("AUDIT_CHAIN_DELAY_MS", 0) / 1000)
        while True:
            with _chaining.lock:
                _chaining.again = False
            try:
                chain_pending()
            except ChainerBusy:
                busy += 1
                if busy > BUSY_RETRIES:  # the holder, the next commit or the periodic task will seal them
                    break
                time.sleep(BUSY_PAUSE_SECONDS)  # a green sleep under gevent and eventlet
                continue
            except Exception as error:
                failure = dependency_failure(error)
                if failure is None:
                    raise
                # The database went away after the commit: the events are stored, only their sealing waits, for
                # the next commit's chainer or the periodic task. One line, as for a request, not a traceback.
                log.warning("audit chain: sealing postponed, %s unavailable: %s", failure[2], type(error).__name__)
                break
            with _chaining.lock:
                # Decided under the lock: a commit now either sees `running` still set (and asked for `again`, seen
                # here) or finds it cleared and starts a chainer of its own.
                if not _chaining.again:
                    _chaining.running = False
                    return
    except BaseException:
        with _chaining.lock:
            _chaining.running = False
        raise
    with _chaining.lock:
        _chaining.running = False


def event_hash(event, *, prev_hash=None):
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
        "prev_hash": event.prev_hash if prev_hash is None else prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ChainReport(NamedTuple):
    checked: int  # sealed rows verified, in chain order
    broken_id: int | None  # the first row that breaks the chain
    reason: str | None
    unsealed: int = 0  # rows waiting for the chainer
    stale_id: int | None = None  # the oldest row left unsealed for longer than the threshold: is the chainer running?


def verify_chain(batch_size=1000, *, stale_after=None):
    """Walk the chain by chain position; also count the unsealed rows and name the oldest one that is stale."""
    if stale_after is None:
        stale_after = timedelta(seconds=current_app.config.get("AUDIT_CHAIN_STALE_SECONDS", 300))
    expected_prev = GENESIS_HASH
    checked = 0
    while True:
        # Plain rows, not the session's objects: one loaded before the chainer sealed it would still look unsealed.
        rows = db.session.execute(
            select(_table).where(AuditEvent.chain_position > checked)
            .order_by(AuditEvent.chain_position).limit(batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.chain_position != checked + 1 or row.prev_hash != expected_prev:
                return ChainReport(checked, row.id,
                                   "does not link to the row before it (a row was removed or inserted)")
            if event_hash(row) != row.hash:
                return ChainReport(checked, row.id, "content does not match its hash (the row was altered)")
            expected_prev = row.hash
            checked += 1
    unsealed = AuditEvent.chain_position.is_(None)
    waiting = db.session.scalar(select(func.count()).select_from(_table).where(unsealed))
    stale_id = db.session.scalar(select(func.min(AuditEvent.id))
                                 .where(unsealed, AuditEvent.occurred_at < utcnow() - stale_after)) \
        if waiting else None
    return ChainReport(checked, None, None, waiting, stale_id)


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
