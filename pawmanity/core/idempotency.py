"""Idempotency keys: a client that retries a POST with the same `Idempotency-Key` gets the first answer again.

Following the IETF httpapi draft: keys are chosen by the client and scoped to its user; the same key with the same
request replays the stored answer; the same key with a different request is refused (422); a key whose first request
is still running answers 409. Keys expire after `IDEMPOTENCY_KEY_HOURS`.

The key is reserved in a transaction of its own before the work starts, and the answer is stored after it. If the
work fails before anything was committed the reservation is released, so a retry runs afresh; if it had committed
(the answer was lost on the way), the reservation stays and a retry is told 409 rather than creating a duplicate.
"""

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, Uuid, delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.encryption.fields import decrypt_value, encrypt_value
from pawmanity.core.errors import Conflict, InvalidInput
from pawmanity.core.extensions import db

# The draft's key is an sf-string; any printable ASCII up to 255 characters is accepted here.
KEY_PATTERN = re.compile(r'^[\x20-\x7e]{1,255}$')
REPLAYED_HEADERS = ("Location", "ETag")
COMMITTED = "pawmanity.idempotency.committed"


class IdempotencyKey(db.Model):
    """One key of one user: the request it was first used with, and the answer given, until it expires."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # Empty while the first request is still being processed.
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(128))
    headers: Mapped[str | None] = mapped_column(Text)  # JSON: the response headers worth replaying
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


def fingerprint(method, path, parts):
    """SHA-256 over the request line and its body parts (bytes), so another body under the same key shows."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def begin(user_id, key, request_fingerprint):
    """Reserve the key, or find it used. Returns (reservation id, None) to proceed, or (None, stored row) to
    replay."""
    if not KEY_PATTERN.match(key):
        raise InvalidInput("Idempotency-Key must be 1 to 255 printable ASCII characters.",
                           code="invalid_idempotency_key", errors={"Idempotency-Key": ["Not a valid key."]})
    now = utcnow()
    row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                         IdempotencyKey.key == key))
    if row is not None and row.expires_at <= now:
        db.session.delete(row)
        db.session.flush()
        row = None
    if row is None:
        row = IdempotencyKey(user_id=user_id, key=key, fingerprint=request_fingerprint, created_at=now,
                             expires_at=now + timedelta(hours=current_app.config["IDEMPOTENCY_KEY_HOURS"]))
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:  # the same key raced in from a concurrent request
            db.session.rollback()
            raise _in_use() from None
        db.session.info[COMMITTED] = False
        return row.id, None
    db.session.rollback()
    if row.fingerprint != request_fingerprint:
        raise InvalidInput("This Idempotency-Key was used with a different request; use a new key.",
                           code="idempotency_key_reused")
    if row.status is None:
        raise _in_use()
    return None, row


def finish(reservation_id, *, status, content_type, headers, body):
    """Store the answer to replay."""
    db.session.rollback()  # whatever the view left open
    row = db.session.get(IdempotencyKey, reservation_id)
    row.status, row.content_type = status, content_type
    row.body = None if body is None else encrypt_value(body, **_body_field(row)).encode()
    row.headers = json.dumps({name: headers[name] for name in REPLAYED_HEADERS if name in headers})
    db.session.commit()


def fail(reservation_id):
    """The work raised. Release the key unless something was committed meanwhile (then a retry must not redo it)."""
    committed = db.session.info.pop(COMMITTED, False)
    db.session.rollback()
    if not committed:
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == reservation_id))
        db.session.commit()


def _body_field(row):
    # The stored answer may hold identifiers (an e-mail address, a microchip number), so it is encrypted like them,
    # bound to its row. `flask keys rotate` leaves these alone: they expire within IDEMPOTENCY_KEY_HOURS, so keep a
    # retired key configured that long after a rotation.
    return {"table": "idempotency_keys", "column": "body", "row_id": row.id}


def stored_body(row):
    return None if row.body is None else decrypt_value(row.body.decode(), **_body_field(row), as_bytes=True)


def stored_headers(row):
    return json.loads(row.headers or "{}")


def _in_use():
    return Conflict("A request with this Idempotency-Key is still being processed, or its outcome is unknown; "
                    "retry later or use the resource it created.", code="idempotency_key_in_use",
                    headers={"Retry-After": "1"})


@event.listens_for(Session, "after_commit")
def _note_commit(session):
    if COMMITTED in session.info:
        session.info[COMMITTED] = True
