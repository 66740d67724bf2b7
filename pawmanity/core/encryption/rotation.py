"""Re-encrypting every encrypted field under the active key, in batches, resumably (`flask keys rotate`).

To rotate: generate a key (`flask keys generate`), put it FIRST in PAWMANITY_FIELD_KEYS (or the key file) while
keeping the old ones, restart every process (new values are then sealed under the new key, old ones still open),
and run `flask keys rotate`. It walks each encrypted field of each table in primary-key order, a batch per
transaction, rewriting the rows still sealed under another key; the position reached is saved per (key, table,
field) in `field_key_rotations`, so an interrupted rotation resumes where it stopped. A row is rewritten with a
compare-and-set on its old ciphertext (a concurrent edit wins, and is already under the new key) and without
touching `updated_at` or a row version (ETags stay). Once `flask keys status` shows nothing left on the old key,
remove it from the configuration.

Rows whose value does not decrypt are skipped and counted (the log names them); they need an administrator.
"""

import logging
import time
from datetime import datetime

from sqlalchemy import Integer, String, func, select, true, update
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.encryption.fields import (
    ENCRYPTED_FIELDS,
    FORMAT,
    UndecryptableField,
    decrypt_value,
    encrypt_value,
    keyring,
)
from pawmanity.core.extensions import db

log = logging.getLogger("pawmanity.field_encryption")


class FieldKeyRotation(db.Model):
    """How far re-encryption under one key has gone through one table's field."""

    __tablename__ = "field_key_rotations"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_row_id: Mapped[str | None] = mapped_column(String(64))  # the position: rows up to it are done
    rewritten: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # did not decrypt
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _columns(model, field):
    table = model.__table__
    row_id = model.__mapper__.attrs[field.row_id_attr].columns[0]
    return table, row_id, table.c[field.ciphertext_attr]


def rotate_batch(model, field, *, batch_size=500):
    """Rewrite up to `batch_size` rows of one field under the active key and commit. Returns True when done."""
    active = keyring().active
    progress = db.session.get(FieldKeyRotation, (active, field.table, field.name))
    if progress is None:
        progress = FieldKeyRotation(key_id=active, table_name=field.table, field=field.name, rewritten=0, skipped=0)
        db.session.add(progress)
    table, row_id, ciphertext = _columns(model, field)
    stale = ciphertext.is_not(None) & ~ciphertext.startswith(f"{FORMAT}:{active}:", autoescape=True)
    if progress.finished_at is not None:
        # Done before; but this key may have been made active again after a rotation to another one.
        if db.session.scalar(select(row_id).where(stale).limit(1)) is None:
            db.session.commit()
            return True
        progress.last_row_id, progress.finished_at = None, None
    after = true() if progress.last_row_id is None else row_id > row_id.type.python_type(progress.last_row_id)
    rows = db.session.execute(
        select(row_id, ciphertext)
        .where(after, stale).order_by(row_id).limit(batch_size)).all()
    # Setting a column to itself keeps its onupdate default (updated_at) from firing.
    unchanged = {column.name: column for column in table.c if column.onupdate is not None}
    for identifier, token in rows:
        try:
            plaintext = decrypt_value(token, table=field.table, column=field.name, row_id=identifier)
        except UndecryptableField:
            progress.skipped += 1
            continue
        sealed = encrypt_value(plaintext, table=field.table, column=field.name, row_id=identifier)
        result = db.session.execute(update(table).where(row_id == identifier, ciphertext == token)
                                    .values({ciphertext.name: sealed, **unchanged}))
        progress.rewritten += result.rowcount
    if rows:
        progress.last_row_id = str(rows[-1][0])
    if len(rows) < batch_size:
        progress.finished_at = utcnow()
    db.session.commit()
    return progress.finished_at is not None


def rotate(*, batch_size=500, seconds=None, on_batch=None):
    """Batches over every encrypted field until all are done (True) or `seconds` have passed (False)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    for model, field in ENCRYPTED_FIELDS:
        while not rotate_batch(model, field, batch_size=batch_size):
            if on_batch:
                on_batch(field)
            if deadline is not None and time.monotonic() > deadline:
                return False
    return True


def status():
    """Per field: rows with a value, rows under the active key, and the saved progress."""
    active = keyring().active
    report = []
    for model, field in ENCRYPTED_FIELDS:
        _, _, ciphertext = _columns(model, field)
        total, current = db.session.execute(select(
            func.count(ciphertext),
            func.count(ciphertext).filter(ciphertext.startswith(f"{FORMAT}:{active}:", autoescape=True)))).one()
        progress = db.session.get(FieldKeyRotation, (active, field.table, field.name))
        report.append({"field": f"{field.table}.{field.name}", "rows": total, "on_active_key": current,
                       "rewritten": progress.rewritten if progress else 0,
                       "skipped": progress.skipped if progress else 0,
                       "finished": bool(progress and progress.finished_at)})
    db.session.commit()
    return active, report
