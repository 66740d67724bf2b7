"""The migration history is the schema: upgrading from nothing gives exactly what the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from pawmanity.core.extensions import db
from pawmanity.metadata import include_object


def schema_differences(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        return compare_metadata(context, db.metadata)


def test_upgraded_database_matches_the_models(app):
    # The session database was built by `upgrade()` alone (see conftest); the models must agree with it.
    assert schema_differences(app) == []


def test_downgrade_and_upgrade_round_trip(make_app, database, tmp_path):
    if database["dialect"] == "postgresql":
        import psycopg

        name = f"{database['name']}_roundtrip"
        with psycopg.connect(database["admin_dsn"], autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = database["url"].rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    app = make_app(plugins=(), SQLALCHEMY_DATABASE_URI=url)
    try:
        with app.app_context():
            upgrade()
            assert "audit_events" in inspect(db.engine).get_table_names()
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            assert schema_differences(app) == []
            db.engine.dispose()
    finally:
        if database["dialect"] == "postgresql":
            with psycopg.connect(database["admin_dsn"], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_sessions_revoked_while_redis_held_the_blocklist_stay_revoked(make_app, tmp_path):
    """Before 0014 a revoked session had its blocklist entry in Redis only; the upgrade writes it to the database."""
    import uuid
    from datetime import timedelta
    from types import SimpleNamespace

    from sqlalchemy import select, text

    from pawmanity.core.database import utcnow
    from pawmanity.identity.models import AuthSession, RevokedToken

    url = f"sqlite:///{tmp_path / 'backfill.sqlite3'}"
    app = make_app(plugins=(), SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade(revision="0013_email_skeleton")
        now = utcnow()
        # The schema of 0013 (e-mail addresses in plaintext), which the models no longer describe.
        user = SimpleNamespace(id=uuid.uuid4())
        db.session.execute(text(
            "INSERT INTO users (id, email, password_hash, full_name, role, active, timezone, password_changed_at, "
            "created_at, updated_at) VALUES (:id, 'old@example.com', 'x', 'Old Times', 'patient', 1, 'UTC', :at, "
            ":at, :at)"), {"id": user.id.hex, "at": now})
        ended, live, long_gone, already = (uuid.uuid4() for _ in range(4))
        for session_id, revoked_at, expires_at in ((ended, now, now + timedelta(days=29)),
                                                   (live, None, now + timedelta(days=29)),
                                                   (long_gone, now - timedelta(days=40), now - timedelta(days=10)),
                                                   (already, now, now + timedelta(days=29))):
            db.session.add(AuthSession(id=session_id, user_id=user.id, created_at=now, last_used_at=now,
                                       expires_at=expires_at, revoked_at=revoked_at))
        db.session.add(RevokedToken(key=f"sid:{already}", expires_at=now + timedelta(days=29)))
        db.session.commit()
        upgrade()
        assert set(db.session.scalars(select(RevokedToken.key))) == {f"sid:{ended}", f"sid:{already}"}
        db.engine.dispose()
