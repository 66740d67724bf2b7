"""Pull: everything the caller can see that changed since their cursor, as WatermelonDB's `changes` object.

Commit order, never wall-clock time. On PostgreSQL every change-log row carries its transaction's 64-bit id, and
a pull reads in one REPEATABLE READ snapshot. Its cursor keeps that snapshot (`pg_current_snapshot()`: xmin, xmax
and the ids still in progress). The next pull delivers exactly the changes visible in its own snapshot (MVCC does
that) and not visible in the cursor's (`NOT pg_visible_in_snapshot(txid, previous)`): a transaction that started
before a pull and commits after it was in progress in that pull's snapshot, so the next pull delivers it; one that
had committed was delivered then. A committed transaction becomes visible in exactly one step from snapshot to
snapshot, so each change is delivered once, and the rows are read in the same snapshot, so what is sent is what
was committed as of that step. This is how PgQ cuts its event batches (Skytools, `txid_visible_in_snapshot`).
Only txids at or above the previous snapshot's xmin need looking at (all below it were settled then), which is
the index range read. SQLite has one writer at a time: its log id is the order and the cursor is the next id.
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, text

from pawmanity.audit import trail
from pawmanity.core.database import utcnow
from pawmanity.core.errors import DomainError
from pawmanity.core.extensions import db
from pawmanity.sync.models import SyncChange, SyncCursor, SyncWatermark
from pawmanity.sync.tables import EVERYTHING, TABLES, TAG_COLUMNS, scopes_of, visible

CHUNK = 500


class CursorExpired(DomainError):
    status, code = 410, "cursor_expired"


def expired(detail):
    return CursorExpired(
        f"{detail} Discard the local copy and pull again without a cursor (a full sync).",
        extra={"resync": {"method": "GET", "path": "/api/v1/sync/pull"}},
    )


def pull(actor, cursor=None):
    """{"changes": {table: {"created": [rows], "updated": [rows], "deleted": [ids]}}, "cursor": int}."""
    db.session.commit()  # whatever authentication left open: the pull needs a transaction of its own
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    bound, snapshot = current_bound(postgresql)  # the first statement: on PostgreSQL it takes the snapshot
    previous = _previous(actor, cursor)
    now = scopes_of(actor)
    changes, patients_sent = {}, set()
    for spec in TABLES:
        if previous is None:
            rows = _rows(spec, spec.in_scope(now[spec.family]))
            changes[spec.name] = {"created": rows, "updated": [], "deleted": []}
        else:
            changes[spec.name] = _since(spec, previous, now, bound)
        patients_sent.update(str(row.patient_id if spec.name != "patients" else row.id)
                             for kind in ("created", "updated") for row in changes[spec.name][kind]
                             if spec.family == "patients")
    db.session.commit()  # the snapshot ends; the objects stay loaded for the answer
    issued = SyncCursor(user_id=actor.user_id, role=actor.role, position=bound, snapshot=snapshot, scopes=now,
                        created_at=utcnow())
    db.session.add(issued)
    db.session.flush()
    trail.record("sync.pull", actor, object_type="sync_cursor", object_id=issued.id, detail={
        "since": cursor, "patient_ids": sorted(patients_sent),
        "counts": {name: {kind: len(items) for kind, items in table.items()} for name, table in changes.items()},
    })
    db.session.commit()
    return {"changes": changes, "cursor": issued.id}


def current_bound(postgresql):
    """(position, snapshot): on PostgreSQL the current snapshot's xmin and the snapshot as text (every txid below
    the xmin is settled: committed or aborted); on SQLite the next change-log id and None."""
    if postgresql:
        snapshot = db.session.scalar(text("SELECT pg_current_snapshot()::text"))
        return int(snapshot.split(":")[0]), snapshot
    return db.session.scalar(select(func.coalesce(func.max(SyncChange.id), 0) + 1)), None


def position_column(postgresql):
    return SyncChange.txid if postgresql else SyncChange.id


def _window(previous, bound):
    """The change-log rows a pull from `previous` delivers (see the module doc)."""
    if previous.snapshot is None:  # SQLite: [previous next id, this next id)
        return (SyncChange.id >= previous.position) & (SyncChange.id < bound)
    not_seen = text("NOT pg_visible_in_snapshot(CAST(CAST(sync_changes.txid AS text) AS xid8), "
                    "CAST(:previous_snapshot AS pg_snapshot))").bindparams(previous_snapshot=previous.snapshot)
    return (SyncChange.txid >= previous.position) & not_seen


def _previous(actor, cursor):
    if not cursor:
        return None
    row = db.session.get(SyncCursor, cursor)
    if row is None or row.user_id != actor.user_id:
        raise expired("This cursor is unknown or has expired.")
    if row.role != actor.role:
        raise expired("Your role changed since this cursor was issued.")
    keep = timedelta(days=current_app.config["SYNC_TOMBSTONE_DAYS"])
    purged_below = db.session.scalar(select(SyncWatermark.purged_below)) or 0
    if row.created_at < utcnow() - keep or row.position < purged_below:
        raise expired(f"Deletions are kept for {current_app.config['SYNC_TOMBSTONE_DAYS']} days; this cursor is "
                      "older.")
    return row


def _since(spec, previous, now, bound):
    before_scope, now_scope = previous.scopes[spec.family], now[spec.family]
    window = db.session.execute(
        select(SyncChange.row_id, SyncChange.op, *(getattr(SyncChange, column) for column in TAG_COLUMNS.values()))
        .where(SyncChange.table_name == spec.table, _window(previous, bound))
        .order_by(SyncChange.id)
    ).all()
    inserted, keys = set(), {}
    for change in window:
        row_id = spec.parse_id(change.row_id)
        if change.op == "I":
            inserted.add(row_id)  # created since the cursor, whatever else happened to it since
        keys.setdefault(row_id, set()).update(
            f"{tag}:{value}" for tag, value in zip(TAG_COLUMNS, change[2:]) if value is not None)
    current = {row.id: row for row in _rows_by_id(spec, list(keys))}
    created, updated, deleted = [], [], set()
    for row_id, row_keys in keys.items():
        row = current.get(row_id)
        if row is not None and visible(spec.row_keys(row), now_scope):
            (created if row_id in inserted else updated).append(row)
        elif row_id in inserted and row is None:
            continue  # created and deleted since the cursor: the client never had it
        elif row is None and (visible(row_keys, before_scope) or visible(row_keys, now_scope)):
            deleted.add(row_id)
        elif row is not None and visible(spec.row_keys(row), before_scope):
            deleted.add(row_id)  # still there, but no longer the caller's
    if before_scope != now_scope:
        sent = {row.id for row in created + updated}
        gained, lost = _difference(now_scope, before_scope), _difference(before_scope, now_scope)
        if gained:
            created.extend(row for row in _rows(spec, spec.in_scope(gained)) if row.id not in sent)
        if lost:
            deleted.update(row.id for row in _keys_only(spec, spec.in_scope(lost))
                           if not visible(spec.row_keys(row), now_scope))
    return {"created": created, "updated": updated, "deleted": sorted(str(row_id) for row_id in deleted)}


def _difference(scope, other):
    if scope == EVERYTHING or other == EVERYTHING:
        return [] if scope == other else scope  # only with a role change, which expires the cursor first
    return sorted(set(scope) - set(other))


def _rows(spec, condition):
    return db.session.scalars(select(spec.model).where(condition).order_by(spec.model.id)).all()


def _keys_only(spec, condition):
    """Ids and scope columns only: a lost patient's year of vitals need not be loaded to be forgotten."""
    columns = [spec.model.id, *(getattr(spec.model, attribute) for _, attribute in spec.keys
                                if attribute != "id")]
    return db.session.execute(select(*columns).where(condition)).all()


def _rows_by_id(spec, ids):
    for start in range(0, len(ids), CHUNK):
        yield from db.session.scalars(select(spec.model).where(spec.model.id.in_(ids[start:start + CHUNK])))
