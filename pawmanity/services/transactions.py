"""Side effects that must wait for the commit: live events, e-mails. A rolled-back transaction sends nothing."""

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

from pawmanity.extensions import db

KEY = "pawmanity.on_commit"
log = logging.getLogger(__name__)


def on_commit(callback):
    db.session.info.setdefault(KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run(session):
    for callback in session.info.pop(KEY, []):
        try:
            callback()
        except Exception:  # the data is committed; a failed side effect is logged, not turned into a 500
            log.exception("after-commit side effect failed")


@event.listens_for(Session, "after_rollback")
def _discard(session):
    session.info.pop(KEY, None)
