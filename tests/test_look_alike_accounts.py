"""One address, one account: case, full-width forms and letters from other alphabets do not make a second one."""

import pytest
from sqlalchemy import func, select

from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from tests.support import PASSWORD, assert_problem

REGISTER = "/api/v1/auth/register"


def register(client, email):
    return client.post(REGISTER, json={"email": email, "password": PASSWORD, "full_name": "Alice",
                                       "role": "patient"})


@pytest.fixture
def alice(client):
    response = register(client, "alice@example.com")
    assert response.status_code == 201
    return response.get_json()


@pytest.mark.parametrize("look_alike, code", [
    ("ALICE@Example.COM", "email_taken"),
    ("\uff41\uff4c\uff49\uff43\uff45@example.com", "email_taken"),         # full-width: the same address (NFKC)
    ("\u0430lice@example.com", "email_confusable"),                        # Cyrillic a
    ("alic\u0435@example.com", "email_confusable"),                        # Cyrillic ie
    ("\u03b1lice@example.com", "email_confusable"),                        # Greek alpha
    ("alice@\u0435xample.com", "email_confusable"),                        # Cyrillic in the domain
    ("\u0430l\u0456\u0441\u0435@example.com", "email_confusable"),         # every letter but l Cyrillic
], ids=["case", "fullwidth", "cyrillic-a", "cyrillic-e", "greek-alpha", "cyrillic-domain", "mostly-cyrillic"])
def test_a_look_alike_of_an_existing_address_is_refused(client, alice, look_alike, code):
    assert_problem(register(client, look_alike), 409, code)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_different_ascii_addresses_are_not_look_alikes(client, alice):
    assert register(client, "alice1@example.com").status_code == 201
    assert register(client, "alicia@example.com").status_code == 201


def test_a_look_alike_registered_first_blocks_the_original_too(client):
    assert register(client, "\u0430lice@example.com").status_code == 201
    assert_problem(register(client, "alice@example.com"), 409, "email_confusable")


def test_sign_in_reads_the_address_the_same_way(client, alice):
    for spelling in ("Alice@Example.com", "\uff41\uff4c\uff49\uff43\uff45@example.com"):
        response = client.post("/api/v1/auth/login", json={"email": spelling, "password": PASSWORD})
        assert response.status_code == 200, spelling


def test_admins_cannot_create_look_alikes_either(client, auth, gen_user, alice):
    admin = gen_user(role="admin")
    response = client.post("/api/v1/admin/users", json={"email": "\u0430lice@example.com", "password": PASSWORD,
                                                         "full_name": "Mallory", "role": "admin"},
                           headers=auth(admin))
    assert_problem(response, 409, "email_confusable")


def test_the_cli_admin_uses_the_same_normaliser(app, alice):
    from pawmanity.identity import accounts
    from pawmanity.identity.actor import Actor

    user, created = accounts.ensure_admin(email="\uff41\uff4c\uff49\uff43\uff45@EXAMPLE.com", password=PASSWORD,
                                          full_name="Alice", actor=Actor(ip=None))
    assert not created and user.email == "alice@example.com" and user.role == "admin"


def test_an_invitation_is_stored_in_the_normal_form(client, auth, gen_user, gen_patient):
    from pawmanity.care.models import GuardianInvitation

    owner = gen_user()
    gen_user(email="gran@example.com")
    pet = gen_patient(owner)
    response = client.post(f"/api/v1/patients/{pet.id}/invitations",
                           json={"email": "\uff27ran@Example.COM", "relation": "family"}, headers=auth(owner))
    assert response.status_code == 201
    assert db.session.scalar(select(GuardianInvitation)).email == "gran@example.com"


def test_the_migration_gives_existing_accounts_their_skeleton(make_app, tmp_path):
    """Look-alikes created before the column keep working; the older account holds the skeleton."""
    import uuid
    from datetime import datetime, timedelta

    from flask_migrate import upgrade
    from sqlalchemy import text

    app = make_app(plugins=(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'skeleton.sqlite3'}")
    with app.app_context():
        upgrade(revision="0009_diagnosis_feedback")
        start = datetime(2026, 1, 1)
        for minutes, email in enumerate(["alice@example.com", "\u0430lice@example.com", "bob@example.com"]):
            db.session.execute(text(
                "INSERT INTO users (id, email, password_hash, full_name, role, active, timezone, "
                "password_changed_at, created_at, updated_at) VALUES (:id, :email, 'x', 'X', 'patient', 1, 'UTC', "
                ":at, :at, :at)"), {"id": uuid.uuid4().hex, "email": email, "at": start + timedelta(minutes=minutes)})
        db.session.commit()
        upgrade(revision="0013_email_skeleton")
        rows = dict(db.session.execute(text("SELECT email, email_skeleton FROM users")).all())
        # Since 0018 the skeleton is kept only as a blind index; the look-alike keeps none.
        upgrade()
        users = db.session.scalars(select(User)).all()
        indexes = {user.email: user.email_skeleton_index for user in users}
        expected = {email: User.email_skeleton.blind_index_of(email) for email in ("alice@example.com",
                                                                                   "bob@example.com")}
        db.engine.dispose()
    assert rows == {"alice@example.com": "alice@example.com", "\u0430lice@example.com": None,
                    "bob@example.com": "bob@example.com"}
    assert indexes == {**expected, "\u0430lice@example.com": None}
