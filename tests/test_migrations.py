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
