"""Secret calendar feed URLs: calendar apps cannot send a bearer token, so each account may hold one long random
URL that serves its appointments' feed. Revocable, rotatable, and every use is audited like a signed-in read."""

import hashlib
import secrets

from sqlalchemy import select

from pawmanity.appointments import booking
from pawmanity.appointments.models import CalendarFeed
from pawmanity.audit import trail
from pawmanity.core.database import utcnow
from pawmanity.core.errors import NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.models import User

SECRET_BYTES = 32  # 256 bits: as strong as a signing key, and it never expires on its own


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(actor):
    """A new feed secret for the caller, replacing any earlier one (whose URL stops working at once)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    feed = db.session.get(CalendarFeed, actor.user_id)
    rotated = feed is not None
    if feed is None:
        feed = CalendarFeed(user_id=actor.user_id)
        db.session.add(feed)
    feed.secret_hash, feed.created_at, feed.last_used_at, feed.created_by = _digest(secret), utcnow(), None, \
        actor.user_id
    trail.record("calendar_feed.rotate" if rotated else "calendar_feed.create", actor, object_type="user",
                 object_id=actor.user_id)
    db.session.commit()
    return secret, feed


def revoke(actor):
    feed = db.session.get(CalendarFeed, actor.user_id)
    if feed is None:
        raise NotFound("You have no calendar feed URL.", code="no_calendar_feed")
    db.session.delete(feed)
    trail.record("calendar_feed.revoke", actor, object_type="user", object_id=actor.user_id)
    db.session.commit()


def appointments_for_secret(secret, actor):
    """The feed's appointments, read as its owner; 404 for an unknown, rotated or revoked secret, or an account
    that is no longer active. `actor` carries the calendar app's address and agent for the audit trail."""
    row = db.session.execute(select(CalendarFeed, User).join(User, User.id == CalendarFeed.user_id)
                             .where(CalendarFeed.secret_hash == _digest(secret))).first()
    if row is None or not row.User.active:
        raise NotFound("No such calendar feed.")
    row.CalendarFeed.last_used_at = utcnow()
    owner = actor.acting_as(row.User)
    return booking.calendar_appointments(owner, via="calendar_feed")
