"""Dependency checks for /ready: each answers 'ok' or names what failed, never raising."""

from sqlalchemy import text

from pawmanity.core.extensions import db, docstore, redis_client


def check_dependencies():
    checks = {"database": _check(_ping_database),
              "document_store": _check(docstore.ping)}
    if redis_client.enabled:
        checks["redis"] = _check(redis_client.client.ping)
    return checks


def _check(probe):
    try:
        probe()
    except Exception as error:  # any failure means "not ready"; the type is enough for an operator
        return f"unavailable: {type(error).__name__}"
    return "ok"


def _ping_database():
    try:
        db.session.execute(text("SELECT 1"))
    finally:
        db.session.rollback()  # leave no transaction open, failed or not
