"""What every domain's models and services share about the database: UTC timestamps, id and timestamp mixins,
side effects that wait for the commit, upserts, and the one pagination helper."""

import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import DateTime, TypeDecorator, Uuid, event, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

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
