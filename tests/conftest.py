"""Fixtures that let tests read as stories: `alice = gen_user(role="patient")`; `client.get(..., headers=auth(alice))`.

The database is PostgreSQL when TEST_DATABASE_URL or DATABASE_URL names one (CI), else SQLite files; Redis is used
when REDIS_URL is set. The header of the run says which.
"""

import os
import shutil
import uuid
from itertools import count

import mongomock
import psycopg
import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from pawmanity import create_app
from pawmanity.core import docstore as docstore_module
from pawmanity.core.extensions import db, limiter
from pawmanity.identity import passwords, tokens
from pawmanity.identity.actor import Actor
from pawmanity.identity.email_addresses import email_skeleton
from pawmanity.identity.models import User
from tests.support import PASSWORD, REDIS_URL, SERVER_DATABASE_URL, field_key_env

# The in-memory pymongo double is a test-only backend of the document-store seam.
docstore_module.BACKENDS["mongomock"] = lambda uri: mongomock.MongoClient(tz_aware=True)



def pytest_report_header(config):
    database = "PostgreSQL " + make_url(SERVER_DATABASE_URL).render_as_string(hide_password=True) \
        if SERVER_DATABASE_URL else "SQLite (embedded; set TEST_DATABASE_URL for PostgreSQL)"
    redis = f"Redis {REDIS_URL}" if REDIS_URL else "no Redis (database blocklist, in-memory rate limits)"
    return [f"pawmanity database: {database}", f"pawmanity redis: {redis}"]


def psycopg_url(url):
    return make_url(url).set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    """A migrated database for the session: a fresh PostgreSQL database, or a SQLite template file."""
    if SERVER_DATABASE_URL:
        server = psycopg_url(SERVER_DATABASE_URL)
        name = f"pawmanity_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # A crash of the test server may lose the last commits of a throwaway database; not waiting for each
            # commit's WAL flush saves a disk sync per commit, thousands in a run.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        url = server.set(database=name).render_as_string(hide_password=False)
        migrate_to_head(url)
        yield {"dialect": "postgresql", "url": url, "admin_dsn": admin_dsn, "name": name}
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        template = tmp_path_factory.mktemp("db") / "template.sqlite3"
        migrate_to_head(f"sqlite:///{template}")
        yield {"dialect": "sqlite", "template": template}


def migrate_to_head(url):
    app = create_app("testing", plugins=(), settings={"SQLALCHEMY_DATABASE_URI": url, "MONGO_URI": "mongomock://"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


_app_numbers = count()


@pytest.fixture
def database_url(database, tmp_path):
    """This test's database: the session's PostgreSQL database, or a fresh copy of the migrated SQLite file."""
    if database["dialect"] == "postgresql":
        return database["url"]
    path = tmp_path / "test.sqlite3"
    shutil.copy(database["template"], path)
    return f"sqlite:///{path}"


@pytest.fixture
def make_app(database, database_url, tmp_path):
    """Build apps on the test database; every app of a test shares its data. Tables are emptied afterwards."""
    url = database_url
    built = []
    prefix = f"pawmanity-test:{os.getpid()}:{next(_app_numbers)}:"

    def build(plugins=None, **settings):
        base = {
            "SQLALCHEMY_DATABASE_URI": url,
            "MONGO_URI": "mongomock://",
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "RATELIMIT_STORAGE_URI": REDIS_URL or "memory://",
            "RATELIMIT_KEY_PREFIX": prefix,
            "SOCKETIO_MESSAGE_QUEUE": None,
        }
        app = create_app("testing", plugins=plugins, settings={**base, **settings})
        app.test_client_class = SessionExpiringClient
        with app.app_context():
            # Flask-Limiter keeps its first key prefix for life, so counters from earlier tests are cleared instead
            # (a storage that is down on purpose holds none).
            if limiter.storage.check():
                limiter.reset()
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if database["dialect"] == "postgresql" and built:
        empty_tables(database["url"])


class SessionExpiringClient(FlaskClient):
    """A test inside the app's context shares its database session with the requests it makes, and the app does not
    expire objects on commit; expiring after each request lets the test read what the request committed."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


def empty_tables(url):
    """Delete every row and restart the sequences. DELETE, not TRUNCATE: TRUNCATE gives each of the 60 tables and
    their indexes new files, about 0.5 s a test; deleting the few rows a test wrote takes about 20 ms."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        # The audit table refuses DELETE; the test database's superuser switches triggers (and so the foreign keys'
        # checks, which makes the order free) off for this one reset.
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in db.metadata.sorted_tables:
                conn.execute(f'DELETE FROM "{table.name}"')
            conn.execute("SELECT setval(oid::regclass, 1, false) FROM pg_class "
                         "WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace")


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def gen_user(app):
    """gen_user(role="doctor", email=..., active=False) -> a committed User whose password is PASSWORD."""
    numbers = count(1)
    password_hash = passwords.hash_password(PASSWORD)

    def make(role="patient", *, email=None, full_name=None, active=True):
        n = next(numbers)
        email = email or f"{role}{n}-{uuid.uuid4().hex[:6]}@example.com"
        user = User(email=email, email_skeleton=email_skeleton(email),
                    full_name=full_name or f"Test {role.title()} {n}", role=role, active=active,
                    password_hash=password_hash)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def tokens_for(app):
    """tokens_for(user) -> the token pair a fresh sign-in would give."""

    def issue(user):
        pair = tokens.issue_session(user, Actor(ip="127.0.0.1"))
        db.session.commit()
        return pair

    return issue


@pytest.fixture
def auth(tokens_for):
    """auth(user) -> headers carrying a fresh access token for that user."""

    def headers(user):
        return {"Authorization": f"Bearer {tokens_for(user)['access_token']}"}

    return headers


@pytest.fixture
def gen_doctor(gen_user):
    """gen_doctor(specialty=..., species=(...), timezone=..., verified=True, hours=((0, "08:00", "18:00"), ...))
    -> (user, DoctorProfile). Default hours: every day 08:00-18:00 in the doctor's timezone, 30-minute slots."""
    from pawmanity.core.database import utcnow
    from pawmanity.scheduling.models import AvailabilityRule, DoctorProfile, DoctorSpecies

    def make(*, specialty="general_practice", species=("human", "dog", "cat"), timezone="UTC", verified=True,
             hours=None, slot_minutes=30, buffer_minutes=0, full_name=None):
        user = gen_user(role="doctor", full_name=full_name)
        hours = hours if hours is not None else [(day, "08:00", "18:00") for day in range(7)]
        profile = DoctorProfile(
            user_id=user.id, specialty=specialty, license_number=f"LIC-{uuid.uuid4().hex[:8]}", timezone=timezone,
            slot_minutes=slot_minutes, buffer_minutes=buffer_minutes, verified_at=utcnow() if verified else None,
            species=[DoctorSpecies(species=name) for name in species],
            rules=[AvailabilityRule(weekday=day, start_minute=_minutes(start), end_minute=_minutes(end))
                   for day, start, end in hours],
        )
        db.session.add(profile)
        db.session.commit()
        return user, profile

    return make


def _minutes(clock):
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@pytest.fixture
def gen_patient(app):
    """gen_patient(owner, species="dog", name=...) -> a Patient with `owner` as primary guardian."""
    from pawmanity.care.models import Guardianship, Patient

    def make(owner, *, species="dog", name=None, sex="unknown", **fields):
        patient = Patient(name=name or f"{species.title()} {uuid.uuid4().hex[:4]}", species=species, sex=sex,
                          **fields)
        patient.guardianships.append(Guardianship(user_id=owner.id, relation="owner", is_primary=True))
        db.session.add(patient)
        db.session.commit()
        return patient

    return make


@pytest.fixture
def gen_appointment(app):
    """gen_appointment(doctor_profile, patient, start, status=...) written straight to the database (no slot
    checks), for setting a scene; booking itself is tested through the API."""
    from datetime import timedelta

    from pawmanity.scheduling.models import Appointment

    def make(doctor, patient, start, *, status="requested", type="video", booked_by=None, minutes=30):
        appointment = Appointment(doctor_id=doctor.id, patient_id=patient.id, start_at=start,
                                  end_at=start + timedelta(minutes=minutes), type=type, status=status,
                                  booked_by=booked_by or patient.guardianships[0].user_id)
        db.session.add(appointment)
        db.session.commit()
        return appointment

    return make


@pytest.fixture
def server_env(database_url, tmp_path):
    """The environment of a production-configured server process on this test's database."""
    url = database_url
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PAWMANITY_", "FLASK_"))}
    env.update(
        PAWMANITY_CONFIG="production",
        DATABASE_URL=url,
        SECRET_KEY="a-production-secret-for-server-tests-0123456789",
        PAWMANITY_INSTANCE_DIR=str(tmp_path / "instance"),
        PAWMANITY_ARGON2_MEMORY_KIB="1024",
        PAWMANITY_ARGON2_TIME_COST="1",
        REDIS_KEY_PREFIX=f"pawmanity-server-test:{os.getpid()}:",
        PAWMANITY_MFA_REQUIRED="false",  # doctors sign in with a password alone here; MFA has its own tests
        **field_key_env(tmp_path / "instance"),
    )
    env.pop("MONGO_URI", None)
    if REDIS_URL:
        env["REDIS_URL"] = REDIS_URL
    yield env
