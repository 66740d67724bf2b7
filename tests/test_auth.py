"""Registration, sign-in, token rotation and revocation, the caller's own account."""

from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import func, select

from pawmanity.core.extensions import db
from pawmanity.identity import passwords
from pawmanity.identity.models import AuthSession, User
from tests.support import PASSWORD, assert_problem, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def register(client, **overrides):
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice Martin", "role": "patient",
            **overrides}
    return client.post(REGISTER, json=body)


def login(client, email, password=PASSWORD):
    return client.post(LOGIN, json={"email": email, "password": password})


def user_count():
    return db.session.scalar(select(func.count()).select_from(User))


class TestRegister:
    def test_patient_registers_and_gets_no_password_back(self, client):
        response = register(client)
        assert response.status_code == 201
        body = response.get_json()
        assert body["email"] == "alice@example.com"
        assert body["role"] == "patient" and body["active"] is True
        assert "password" not in body and "password_hash" not in body
        assert body["created_at"].endswith("Z")

    def test_doctor_can_register(self, client):
        assert register(client, role="doctor").get_json()["role"] == "doctor"

    def test_admin_role_cannot_be_self_assigned(self, client):
        assert_problem(register(client, role="admin"), 422)
        assert user_count() == 0

    @pytest.mark.parametrize("field, value", [("active", False), ("verified", True), ("id", "x"),
                                              ("password_hash", "x")])
    def test_fields_a_client_may_not_set_are_refused(self, client, field, value):
        body = assert_problem(register(client, **{field: value}), 422, "validation_failed")
        assert field in body["errors"]
        assert user_count() == 0

    def test_email_is_case_insensitive_and_unique(self, client):
        assert register(client, email="Alice@Example.com").status_code == 201
        assert_problem(register(client, email="ALICE@example.COM"), 409, "email_taken")
        assert user_count() == 1

    @pytest.mark.parametrize("password, reason, code", [
        ("short", "between 8 and 128", "validation_failed"),  # the length rule is the schema's
        ("x" * 129, "between 8 and 128", "validation_failed"),
        ("password1", "too common", "weak_password"),  # the rest is the policy's, which no schema can say
        ("iloveyou", "too common", "weak_password"),
        ("12345678", "too common", "weak_password"),
        ("alice@example.com", "e-mail", "weak_password"),
    ])
    def test_password_policy(self, client, password, reason, code):
        body = assert_problem(register(client, password=password), 422, code)
        assert reason in body["errors"]["password"][0]
        assert user_count() == 0

    def test_long_passphrases_and_unicode_are_accepted(self, client):
        assert register(client, password="ü" * 128).status_code == 201

    def test_password_is_stored_as_argon2id(self, client):
        register(client)
        stored = db.session.scalar(select(User.password_hash))
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored

    def test_unknown_timezone_is_refused(self, client):
        body = assert_problem(register(client, timezone="Mars/Olympus_Mons"), 422)
        assert "timezone" in body["errors"]

    @pytest.mark.parametrize("body", [
        {"email": "not-an-email", "password": PASSWORD, "full_name": "A", "role": "patient"},
        {"email": "a@example.com", "password": 12345678, "full_name": "A", "role": "patient"},
        {"email": "a@example.com", "password": PASSWORD, "full_name": ["A"], "role": "patient"},
        {"email": "a@example.com", "password": PASSWORD, "full_name": "", "role": "patient"},
        {"email": "a@example.com", "password": PASSWORD, "full_name": "A"},
        {"email": "' OR 1=1 --", "password": PASSWORD, "full_name": "A", "role": "patient"},
        [],
        "a string",
    ])
    def test_wrong_types_and_shapes_get_422(self, client, body):
        assert_problem(client.post(REGISTER, json=body), 422, "validation_failed")
        assert user_count() == 0

    def test_sql_looking_text_is_stored_as_text(self, client):
        name = "Robert'); DROP TABLE users;--"
        assert register(client, full_name=name).get_json()["full_name"] == name
        assert user_count() == 1


def test_production_hashing_parameters_meet_owasp_minimum(app):
    from argon2 import extract_parameters

    from config import ProductionConfig

    hasher = passwords._hasher(ProductionConfig.ARGON2_MEMORY_KIB, ProductionConfig.ARGON2_TIME_COST,
                               ProductionConfig.ARGON2_PARALLELISM)
    params = extract_parameters(hasher.hash("correct horse battery"))
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1


class TestLogin:
    def test_login_returns_a_token_pair(self, client, gen_user):
        user = gen_user(email="bob@example.com")
        body = login(client, "BOB@example.com").get_json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
        claims = pyjwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == str(user.id) and claims["role"] == "patient" and claims["type"] == "access"
        assert claims["exp"] - claims["iat"] == 15 * 60

    def test_wrong_password_and_unknown_email_look_the_same(self, client, gen_user):
        gen_user(email="bob@example.com")
        wrong = assert_problem(login(client, "bob@example.com", "not the password"), 401, "invalid_credentials")
        unknown = assert_problem(login(client, "nobody@example.com"), 401, "invalid_credentials")
        # Only the request ids differ: each request has its own.
        assert wrong.pop("request_id") != unknown.pop("request_id")
        assert wrong == unknown

    def test_deactivated_account_cannot_sign_in(self, client, gen_user):
        gen_user(email="gone@example.com", active=False)
        assert_problem(login(client, "gone@example.com"), 401, "invalid_credentials")

    def test_login_is_rate_limited_with_retry_after(self, make_app, gen_user):
        app = make_app(LOGIN_RATE_LIMIT="3 per minute")
        client = app.test_client()
        for _ in range(3):
            assert login(client, "someone@example.com", "wrong password").status_code == 401
        response = login(client, "someone@example.com", "wrong password")
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) > 0

    def test_rate_limit_also_counts_per_target_account(self, make_app):
        app = make_app(LOGIN_RATE_LIMIT="2 per minute")
        client = app.test_client()
        for address in ("10.0.0.1", "10.0.0.2"):
            response = client.post(LOGIN, json={"email": "victim@example.com", "password": "guess guess"},
                                   environ_base={"REMOTE_ADDR": address})
            assert response.status_code == 401
        response = client.post(LOGIN, json={"email": "victim@example.com", "password": "guess guess"},
                               environ_base={"REMOTE_ADDR": "10.0.0.3"})
        assert_problem(response, 429)

    def test_weak_old_hash_is_upgraded_on_login(self, app, client, gen_user):
        from argon2 import PasswordHasher, extract_parameters

        user = gen_user(email="old@example.com")
        user.password_hash = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1).hash(PASSWORD)
        db.session.commit()
        assert login(client, "old@example.com").status_code == 200
        db.session.refresh(user)
        assert extract_parameters(user.password_hash).memory_cost == app.config["ARGON2_MEMORY_KIB"]


class TestRefresh:
    def test_refresh_rotates_the_pair(self, client, gen_user, tokens_for):
        first = tokens_for(gen_user())
        response = client.post(REFRESH, headers=bearer(first["refresh_token"]))
        assert response.status_code == 200
        second = response.get_json()
        assert second["refresh_token"] != first["refresh_token"]
        assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200

    def test_reusing_a_refresh_token_revokes_the_whole_family(self, client, gen_user, tokens_for):
        first = tokens_for(gen_user())
        second = client.post(REFRESH, headers=bearer(first["refresh_token"])).get_json()
        assert_problem(client.post(REFRESH, headers=bearer(first["refresh_token"])), 401, "refresh_token_reused")
        # Everything descended from that sign-in is dead: the rotated refresh token and the access tokens.
        assert_problem(client.post(REFRESH, headers=bearer(second["refresh_token"])), 401, "token_revoked")
        assert_problem(client.get(ME, headers=bearer(second["access_token"])), 401, "token_revoked")
        assert_problem(client.get(ME, headers=bearer(first["access_token"])), 401, "token_revoked")
        assert db.session.scalar(select(AuthSession.revoked_reason)) == "refresh_reuse"

    def test_reuse_does_not_touch_other_sessions(self, client, gen_user, tokens_for):
        user = gen_user()
        phone, laptop = tokens_for(user), tokens_for(user)
        client.post(REFRESH, headers=bearer(phone["refresh_token"]))
        client.post(REFRESH, headers=bearer(phone["refresh_token"]))
        assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 200

    def test_access_token_is_not_a_refresh_token(self, client, gen_user, tokens_for):
        pair = tokens_for(gen_user())
        assert_problem(client.post(REFRESH, headers=bearer(pair["access_token"])), 401, "invalid_token")
        assert_problem(client.get(ME, headers=bearer(pair["refresh_token"])), 401, "invalid_token")

    def test_refresh_for_a_deactivated_user_fails(self, client, gen_user, tokens_for):
        user = gen_user()
        pair = tokens_for(user)
        user.active = False
        db.session.commit()
        assert_problem(client.post(REFRESH, headers=bearer(pair["refresh_token"])), 401)


class TestTokens:
    def test_missing_token(self, client):
        response = client.get(ME)
        assert_problem(response, 401, "missing_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_tampered_token(self, client, gen_user, tokens_for):
        token = tokens_for(gen_user())["access_token"]
        header, payload, signature = token.split(".")
        tampered = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
        assert_problem(client.get(ME, headers=bearer(tampered)), 401, "invalid_token")

    def test_token_with_a_forged_role(self, client, gen_user, tokens_for):
        token = tokens_for(gen_user())["access_token"]
        claims = pyjwt.decode(token, options={"verify_signature": False})
        forged = pyjwt.encode({**claims, "role": "admin"}, "guessed-secret", algorithm="HS256")
        assert_problem(client.get("/api/v1/admin/users", headers=bearer(forged)), 401, "invalid_token")

    def test_alg_none_is_refused(self, client, gen_user, tokens_for):
        token = tokens_for(gen_user())["access_token"]
        claims = pyjwt.decode(token, options={"verify_signature": False})
        unsigned = pyjwt.encode(claims, None, algorithm="none")
        assert_problem(client.get(ME, headers=bearer(unsigned)), 401, "invalid_token")

    def test_other_algorithms_are_refused(self, app, client, gen_user, tokens_for):
        token = tokens_for(gen_user())["access_token"]
        claims = pyjwt.decode(token, options={"verify_signature": False})
        hs512 = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS512")
        assert_problem(client.get(ME, headers=bearer(hs512)), 401, "invalid_token")

    def test_expired_token(self, client, gen_user):
        user = gen_user()
        token = create_access_token(str(user.id), expires_delta=timedelta(seconds=-1))
        assert_problem(client.get(ME, headers=bearer(token)), 401, "token_expired")

    def test_a_token_without_a_session_is_still_checked_against_the_blocklist(self, client, gen_user):
        user = gen_user()
        token = create_access_token(str(user.id))  # no `sid` claim: only its own jti can revoke it
        assert client.get(ME, headers=bearer(token)).status_code == 200
        assert client.post(LOGOUT, headers=bearer(token)).status_code == 204
        assert_problem(client.get(ME, headers=bearer(token)), 401, "token_revoked")

    def test_token_for_a_deactivated_user(self, client, gen_user, auth):
        user = gen_user()
        headers = auth(user)
        user.active = False
        db.session.commit()
        assert_problem(client.get(ME, headers=headers), 401, "account_inactive")

    def test_token_for_a_deleted_user(self, client, gen_user, auth):
        user = gen_user()
        headers = auth(user)
        db.session.delete(user)
        db.session.commit()
        assert_problem(client.get(ME, headers=headers), 401, "account_inactive")

    def test_garbage_authorization_header(self, client):
        assert_problem(client.get(ME, headers={"Authorization": "Bearer not.a.jwt"}), 401)
        assert_problem(client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)


class TestLogout:
    def test_logout_revokes_access_and_refresh_tokens(self, client, gen_user, tokens_for):
        pair = tokens_for(gen_user())
        assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
        assert_problem(client.get(ME, headers=bearer(pair["access_token"])), 401, "token_revoked")
        assert_problem(client.post(REFRESH, headers=bearer(pair["refresh_token"])), 401, "token_revoked")

    def test_logout_leaves_other_devices_signed_in(self, client, gen_user, tokens_for):
        user = gen_user()
        phone, laptop = tokens_for(user), tokens_for(user)
        client.post(LOGOUT, headers=bearer(phone["access_token"]))
        assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 200


class TestMe:
    def test_get_me(self, client, gen_user, auth):
        user = gen_user(role="doctor")
        body = client.get(ME, headers=auth(user)).get_json()
        assert body["id"] == str(user.id) and body["role"] == "doctor"

    def test_patch_name_and_timezone(self, client, gen_user, auth):
        user = gen_user()
        response = client.patch(ME, json={"full_name": "New Name", "timezone": "Asia/Kolkata"}, headers=auth(user))
        assert response.status_code == 200
        assert response.get_json()["full_name"] == "New Name"
        assert response.get_json()["timezone"] == "Asia/Kolkata"

    @pytest.mark.parametrize("field, value", [("role", "admin"), ("active", True), ("verified", True),
                                              ("email", "x@example.com")])
    def test_cannot_escalate_through_patch(self, client, gen_user, auth, field, value):
        user = gen_user()
        assert_problem(client.patch(ME, json={field: value}, headers=auth(user)), 422, "validation_failed")
        db.session.refresh(user)
        assert user.role == "patient" and user.email.endswith("@example.com")

    def test_password_change_needs_the_current_password(self, client, gen_user, auth):
        user = gen_user()
        body = assert_problem(client.patch(ME, json={"new_password": "another fine phrase"}, headers=auth(user)),
                              422)
        assert "current_password" in body["errors"]

    def test_password_change_ends_other_sessions(self, client, gen_user, tokens_for):
        user = gen_user(email="carol@example.com")
        other = tokens_for(user)
        mine = tokens_for(user)
        response = client.patch(ME, json={"current_password": PASSWORD, "new_password": "another fine phrase"},
                                headers=bearer(mine["access_token"]))
        assert response.status_code == 200
        assert_problem(client.get(ME, headers=bearer(other["access_token"])), 401, "token_revoked")
        assert client.get(ME, headers=bearer(mine["access_token"])).status_code == 200  # this device stays in
        assert login(client, "carol@example.com", "another fine phrase").status_code == 200
        assert login(client, "carol@example.com", PASSWORD).status_code == 401

    def test_new_password_follows_the_policy(self, client, gen_user, auth):
        user = gen_user()
        body = assert_problem(client.patch(ME, json={"current_password": PASSWORD, "new_password": "password"},
                                           headers=auth(user)), 422)
        assert "password" in body["errors"]
