"""What every domain's models and services share about the database: UTC timestamps, id and timestamp mixins,
side effects that wait for the commit, upserts, the one pagination helper, and the connection pool."""

import logging
import threading
import uuid
from collections import deque
from datetime import datetime, timezone

from sqlalchemy import DateTime, TypeDecorator, Uuid, event, exc, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.pool import QueuePool

from pawmanity.core.extensions import db

ON_COMMIT_KEY = "pawmanity.on_commit"
log = logging.getLogger(__name__)


def utcnow():
    return datetime.now(timezone.utc)


def upsert_into(target, dialect=None):
    """An INSERT that takes ON CONFLICT (DO NOTHING / DO UPDATE), in the dialect named or else the one in use:
    PostgreSQL and SQLite spell it alike, but SQLAlchemy builds it from each dialect's own `insert`."""
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect or dialect_name()]
    return insert(target)


def dialect_name():
    return db.session.get_bind().dialect.name


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (which forgets the offset) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class IdMixin:
    # Opaque, unguessable ids (UUID4); the API shows them as strings.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def on_commit(callback):
    """Run `callback` once the current transaction commits (live events, e-mails); a rollback drops it."""
    db.session.info.setdefault(ON_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session):
    for callback in session.info.pop(ON_COMMIT_KEY, []):
        try:
            callback()
        except Exception:  # the data is committed; a failed side effect is logged, not turned into a 500
            log.exception("after-commit side effect failed")


@event.listens_for(Session, "after_rollback")
def _discard_on_commit(session):
    session.info.pop(ON_COMMIT_KEY, None)


def paginate(statement, *, page, per_page):
    """A SELECT of one entity in, a page envelope out.

    The total rides on the page's own query as a window function (`count(*) OVER ()`, computed before LIMIT), so a
    page costs one round trip; only a page past the end, which has no row to carry it, asks for the count apart.
    """
    offset = (page - 1) * per_page
    if len(statement.column_descriptions) != 1:  # not a single entity: the plain way
        total = _count(statement)
        items = db.session.scalars(statement.limit(per_page).offset(offset)).unique().all()
        return {"items": items, "page": page, "per_page": per_page, "total": total}
    # unique(): a joined eager load of a collection repeats each item once per related row.
    rows = db.session.execute(statement.add_columns(func.count().over()).limit(per_page).offset(offset)).unique().all()
    items = [row[0] for row in rows]
    total = rows[0][1] if rows else (0 if offset == 0 else _count(statement))
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def _count(statement):
    return db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))


# The connection pool, serving its waiters in the order they came.
#
# SQLAlchemy's QueuePool wakes a waiter through a Condition; under gevent the woken greenlet runs only at its next
# turn, and a request that arrives meanwhile takes the returned connection first. With more requests than
# connections, some waited many turns: list_bench (wrk, 16 connections) put GET /appointments' p99 at 3.5 s with 10
# connections, against 124 ms with enough of them for everyone. Here a returned connection's place goes straight to
# the longest waiter, never to a newcomer, so a short pool is a fair queue: it bounds how many greenlets interleave
# in the database at once, the way a checkout counter does.


class FairQueue:
    """`permits` places, handed out first come, first served; a released place goes to the oldest waiter."""

    def __init__(self, permits):
        self._free = permits
        self._waiters = deque()
        self._lock = threading.Lock()  # a gevent lock once monkey-patched: held for a few lines, never across a wait

    def acquire(self, timeout):
        """Take a place, waiting at most `timeout` seconds; False if none came in time."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        return True  # handed a place between the timeout and the lock: it is ours

    def release(self):
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the place passes to the oldest waiter, the count unchanged
            else:
                self._free += 1


class FairQueuePool(QueuePool):
    """QueuePool behind a FairQueue of pool_size + max_overflow places: a checkout first takes its place in line,
    so the pool underneath always has a connection, or room to open one, when its turn comes. (With unlimited
    overflow, max_overflow=-1, nobody ever waits and there is no line.)"""

    def __init__(self, creator, pool_size=5, max_overflow=10, timeout=30.0, **kwargs):
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, timeout=timeout, **kwargs)
        self._line = FairQueue(pool_size + max_overflow) if max_overflow >= 0 else None

    def _do_get(self):
        if self._line is None:
            return super()._do_get()
        if not self._line.acquire(self._timeout):
            raise exc.TimeoutError(f"{type(self).__name__} limit of size {self.size()} overflow {self._max_overflow} "
                                   f"reached, connection timed out, timeout {self._timeout:.2f}", code="3o7r")
        try:
            return super()._do_get()
        except BaseException:
            self._line.release()
            raise

    def _do_return_conn(self, record):
        try:
            super()._do_return_conn(record)
        finally:
            if self._line is not None:
                self._line.release()
