"""The migration history is the schema: upgrading from nothing gives exactly what the models describe."""

import pytest
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


@pytest.fixture
def scratch_url(database, tmp_path):
    """An empty database of the session's kind, for migrating step by step."""
    if database["dialect"] != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    import psycopg

    name = f"{database['name']}_scratch"
    with psycopg.connect(database["admin_dsn"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield database["url"].rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(database["admin_dsn"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_identifiers_are_encrypted_by_the_migration_and_decrypted_by_its_downgrade(make_app, scratch_url):
    """0018 seals the plaintext identifiers of existing rows and moves the unique constraints to blind indexes."""
    import uuid
    from datetime import timedelta

    import sqlalchemy as sa
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from pawmanity.care.models import GuardianInvitation, Patient
    from pawmanity.core.database import utcnow
    from pawmanity.core.idempotency import IdempotencyKey, stored_body
    from pawmanity.identity.models import User
    from pawmanity.pharmacy.models import Pharmacy
    from pawmanity.scheduling.models import DoctorProfile

    def table(table_name, /, **columns):
        return sa.table(table_name, sa.column("id", sa.Uuid()),
                        *(sa.column(key, type_) for key, type_ in columns.items()))

    now, text_type, at = utcnow(), sa.String(), pawmanity_datetime()
    user_id, look_alike_id, pet_id, doctor_id, pharmacy_id, key_id = (uuid.uuid4() for _ in range(6))
    app = make_app(plugins=(), SQLALCHEMY_DATABASE_URI=scratch_url)
    with app.app_context():
        upgrade(revision="0019_push_and_mfa")
        users = table("users", email=text_type, email_skeleton=text_type, password_hash=text_type,
                      full_name=text_type, role=text_type, active=sa.Boolean(), timezone=text_type,
                      password_changed_at=at, created_at=at, updated_at=at)
        common = {"password_hash": "x", "full_name": "X", "role": "patient", "active": True, "timezone": "UTC",
                  "password_changed_at": now, "created_at": now, "updated_at": now}
        db.session.execute(sa.insert(users), [
            {"id": user_id, "email": "old.owner@example.com", "email_skeleton": "old.owner@example.com", **common},
            {"id": look_alike_id, "email": "\u043eld.owner@example.com", "email_skeleton": None, **common}])
        db.session.execute(sa.insert(table(
            "patients", name=text_type, species=text_type, sex=text_type, microchip_id=text_type,
            version=sa.Integer(), created_at=at, updated_at=at)), [{
                "id": pet_id, "name": "Rex", "species": "dog", "sex": "male", "microchip_id": "985112000000042",
                "version": 3, "created_at": now, "updated_at": now}])
        db.session.execute(sa.insert(table(
            "doctor_profiles", user_id=sa.Uuid(), specialty=text_type, license_number=text_type, timezone=text_type,
            slot_minutes=sa.Integer(), buffer_minutes=sa.Integer(), created_at=at, updated_at=at)), [{
                "id": doctor_id, "user_id": user_id, "specialty": "dermatology", "license_number": "VET-0042",
                "timezone": "UTC", "slot_minutes": 30, "buffer_minutes": 0, "created_at": now, "updated_at": now}])
        db.session.execute(sa.insert(table(
            "guardian_invitations", patient_id=sa.Uuid(), email=text_type, relation=text_type, token_hash=text_type,
            invited_by=sa.Uuid(), created_at=at, expires_at=at)), [{
                "id": uuid.uuid4(), "patient_id": pet_id, "email": "gran@example.com", "relation": "family",
                "token_hash": "0" * 64, "invited_by": user_id, "created_at": now, "expires_at": now}])
        db.session.execute(sa.insert(table(
            "pharmacies", name=text_type, address=text_type, latitude=sa.Float(), longitude=sa.Float(),
            phone=text_type, email=text_type, created_at=at, updated_at=at)), [{
                "id": pharmacy_id, "name": "P", "address": "A", "latitude": 1.0, "longitude": 2.0,
                "phone": "+33 1 00 00 00 42", "email": None, "created_at": now, "updated_at": now}])
        db.session.execute(sa.insert(table(
            "idempotency_keys", user_id=sa.Uuid(), key=text_type, fingerprint=text_type, created_at=at,
            expires_at=at, status=sa.Integer(), body=sa.LargeBinary())), [{
                "id": key_id, "user_id": user_id, "key": "k", "fingerprint": "f" * 64, "created_at": now,
                "expires_at": now + timedelta(hours=1), "status": 201, "body": b'{"email": "old.owner@example.com"}'}])
        db.session.commit()

        upgrade()
        owner = db.session.scalar(select(User).where(User.email == "old.owner@example.com"))
        assert owner.id == user_id and owner.email_ciphertext.startswith("v1:")
        assert owner.email_skeleton_index == User.email_skeleton.blind_index_of("old.owner@example.com")
        assert db.session.get(User, look_alike_id).email_skeleton_index is None
        pet = db.session.scalar(select(Patient).where(Patient.microchip_id == "985112000000042"))
        assert (pet.id, pet.microchip_id, pet.version) == (pet_id, "985112000000042", 3)
        assert db.session.get(DoctorProfile, doctor_id).license_number == "VET-0042"
        assert db.session.scalar(select(GuardianInvitation)).email == "gran@example.com"
        pharmacy = db.session.get(Pharmacy, pharmacy_id)
        assert (pharmacy.phone, pharmacy.email) == ("+33 1 00 00 00 42", None)
        row = db.session.get(IdempotencyKey, key_id)
        assert row.body.startswith(b"v1:") and stored_body(row) == b'{"email": "old.owner@example.com"}'
        plaintext_columns = {column["name"] for name in ("users", "patients", "doctor_profiles", "pharmacies",
                                                         "guardian_invitations")
                             for column in sa.inspect(db.engine).get_columns(name)} & {
            "email", "email_skeleton", "microchip_id", "license_number", "phone"}
        assert plaintext_columns == set()
        # Uniqueness now holds on the blind index.
        db.session.add(User(email="old.owner@example.com", full_name="Twin", role="patient", password_hash="x"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()

        downgrade(revision="0019_push_and_mfa")
        users = db.session.execute(sa.text("SELECT email, email_skeleton FROM users ORDER BY email")).all()
        assert [tuple(row) for row in users] == [("old.owner@example.com", "old.owner@example.com"),
                                                 ("\u043eld.owner@example.com", None)]
        assert db.session.scalar(sa.text("SELECT microchip_id FROM patients")) == "985112000000042"
        assert db.session.scalar(sa.text("SELECT license_number FROM doctor_profiles")) == "VET-0042"
        assert db.session.scalar(sa.text("SELECT phone FROM pharmacies")) == "+33 1 00 00 00 42"
        assert bytes(db.session.scalar(sa.text("SELECT body FROM idempotency_keys"))) == \
            b'{"email": "old.owner@example.com"}'
        db.session.commit()
        db.engine.dispose()


def pawmanity_datetime():
    from pawmanity.core.database import UTCDateTime

    return UTCDateTime()
