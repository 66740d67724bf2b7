"""Multi-factor sign-in with TOTP: RFC 6238's published test vectors drive the code check, and real codes (pyotp, as
an authenticator app makes them) drive the API."""

import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask_jwt_extended import decode_token
from sqlalchemy import select

from pawmanity.audit.models import AuditEvent
from pawmanity.core.extensions import db
from pawmanity.identity import mfa
from pawmanity.identity.models import RecoveryCode, TotpFactor
from tests.support import PASSWORD, assert_problem, bearer

AUTH = "/api/v1/auth"

# RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890" (ASCII) and its 8-digit TOTP values. A 6-digit code is
# the same truncated value mod 10^6, i.e. the last six digits.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of the ASCII seed
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
               (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.mark.parametrize("at, expected", RFC_VECTORS)
def test_codes_match_rfc_6238_test_vectors(at, expected):
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at) == expected
    step = at // 30
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at) == step
    # One step of drift either way, no more; and never a step already used, or an earlier one.
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at + 30) == step
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at - 30) == step
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at + 60) is None
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at, last_used_step=step) is None
    assert mfa.matching_step(RFC_SECRET, expected[-6:], at=at, last_used_step=step - 1) == step
    assert mfa.matching_step(RFC_SECRET, expected[:6], at=at) is None


def login(client, user, password=PASSWORD):
    return client.post(f"{AUTH}/login", json={"email": user.email, "password": password})


def enrol(client, headers):
    """Enrol and confirm with a real code; returns (authenticator, recovery codes, the new token pair)."""
    started = client.post(f"{AUTH}/mfa/totp", headers=headers)
    assert started.status_code == 200, started.get_json()
    enrolment = started.get_json()
    authenticator = pyotp.parse_uri(enrolment["otpauth_uri"])
    assert authenticator.secret == enrolment["secret"]
    steady()
    # Confirmed with the previous step's code (one step of drift), so the current step's code is still unused.
    confirmed = client.post(f"{AUTH}/mfa/totp/confirm", headers=headers,
                            json={"code": authenticator.at(time.time() - 30)})
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    return authenticator, body["recovery_codes"], body["tokens"]


def steady():
    """Codes made from `time.time()` here must still be of the same step when the server checks them."""
    if 30 - time.time() % 30 < 3:
        time.sleep(3.1)


def test_enrolment_gives_a_qr_ready_uri_and_recovery_codes_stored_hashed(client, gen_user, auth):
    alice = gen_user(email="alice@example.com")
    headers = auth(alice)
    assert client.get(f"{AUTH}/mfa", headers=headers).get_json() == {
        "enabled": False, "confirmed_at": None, "recovery_codes_remaining": 0, "required": False}
    started = client.post(f"{AUTH}/mfa/totp", headers=headers).get_json()
    uri = urlsplit(started["otpauth_uri"])
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/PAWMANITY:alice%40example.com")
    assert parse_qs(uri.query) == {"secret": [started["secret"]], "issuer": ["PAWMANITY"]}
    assert len(started["secret"]) == 32 and (started["digits"], started["period"]) == (6, 30)
    # Not on until confirmed: signing in still gives tokens.
    assert login(client, alice).status_code == 200
    assert_problem(client.post(f"{AUTH}/mfa/totp/confirm", headers=headers, json={"code": "000000"}), 401,
                   "invalid_mfa_code")

    authenticator = pyotp.TOTP(started["secret"])
    confirmed = client.post(f"{AUTH}/mfa/totp/confirm", headers=headers, json={"code": authenticator.now()})
    assert confirmed.status_code == 200
    codes = confirmed.get_json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    stored = db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == alice.id)).all()
    assert len(stored) == 10 and all(value.startswith("$argon2id$") for value in stored)
    assert not any(code.replace("-", "") in value for code in codes for value in stored)
    claims = decode_token(confirmed.get_json()["tokens"]["access_token"])
    assert claims["amr"] == ["otp", "pwd"]
    status = client.get(f"{AUTH}/mfa", headers=headers).get_json()
    assert status["enabled"] is True and status["recovery_codes_remaining"] == 10
    assert_problem(client.post(f"{AUTH}/mfa/totp", headers=headers), 409, "mfa_already_enabled")


def test_sign_in_returns_a_challenge_until_the_code_is_given(client, gen_user, auth):
    alice = gen_user()
    authenticator, _, _ = enrol(client, auth(alice))

    first = login(client, alice)
    assert first.status_code == 202
    challenge = first.get_json()
    assert challenge["mfa_required"] is True and "access_token" not in challenge
    assert challenge["methods"] == ["totp", "recovery_code"] and 0 < challenge["expires_in"] <= 300
    # The challenge is no access token.
    assert_problem(client.get(f"{AUTH}/me", headers=bearer(challenge["challenge_token"])), 401)
    assert_problem(client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge["challenge_token"],
                                                          "code": "123456" if authenticator.now() != "123456"
                                                          else "654321"}), 401, "invalid_mfa_code")
    signed_in = client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge["challenge_token"],
                                                       "code": authenticator.now()})
    assert signed_in.status_code == 200, signed_in.get_json()
    tokens = signed_in.get_json()
    assert client.get(f"{AUTH}/me", headers=bearer(tokens["access_token"])).get_json()["id"] == str(alice.id)
    assert decode_token(tokens["access_token"])["amr"] == ["otp", "pwd"]
    # Refreshing keeps how the session was authenticated.
    refreshed = client.post(f"{AUTH}/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    assert decode_token(refreshed["access_token"])["amr"] == ["otp", "pwd"]

    # The same code again, even with a new challenge, is refused: it was accepted once in its window.
    again = login(client, alice).get_json()
    assert_problem(client.post(f"{AUTH}/login/mfa", json={"challenge_token": again["challenge_token"],
                                                          "code": authenticator.now()}), 401, "invalid_mfa_code")
    # A used challenge does not work twice, whatever the code.
    assert_problem(client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge["challenge_token"],
                                                          "code": authenticator.at(time.time() + 30)}), 401,
                   "invalid_challenge")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login",
                                                         AuditEvent.actor_id == alice.id)).all()
    assert any(event.outcome == "failure" and event.detail == {"reason": "wrong_mfa_code"} for event in events)


def test_a_later_code_in_the_window_is_accepted_and_then_earlier_ones_are_not(client, gen_user, auth):
    alice = gen_user()
    authenticator, _, _ = enrol(client, auth(alice))
    challenge = login(client, alice).get_json()["challenge_token"]
    # The next step's code (one step of clock drift ahead) is accepted, which uses up the current step too.
    assert client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge,
                                                  "code": authenticator.at(time.time() + 30)}).status_code == 200
    challenge = login(client, alice).get_json()["challenge_token"]
    assert_problem(client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge,
                                                          "code": authenticator.now()}), 401, "invalid_mfa_code")


def test_recovery_codes_work_once_each(client, gen_user, auth):
    alice = gen_user()
    _, codes, _ = enrol(client, auth(alice))
    for attempt in (codes[0], codes[0].upper().replace("-", " ")):
        challenge = login(client, alice).get_json()["challenge_token"]
        answer = client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge, "recovery_code": attempt})
        if attempt == codes[0]:
            assert answer.status_code == 200
        else:
            assert_problem(answer, 401, "invalid_mfa_code")
    challenge = login(client, alice).get_json()["challenge_token"]
    assert client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge,
                                                  "recovery_code": codes[1].upper()}).status_code == 200
    assert client.get(f"{AUTH}/mfa", headers=auth(alice)).get_json()["recovery_codes_remaining"] == 8


def test_wrong_codes_are_rate_limited_per_account(make_app, gen_user, auth):
    app = make_app(MFA_CODE_RATE_LIMIT="3 per 5 minutes")
    client = app.test_client()
    with app.app_context():
        alice = gen_user()
        authenticator, _, _ = enrol(client, auth(alice))
        wrong = "000000" if authenticator.now() != "000000" else "111111"
        for _ in range(3):
            challenge = login(client, alice).get_json()["challenge_token"]
            assert_problem(client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge, "code": wrong}),
                           401, "invalid_mfa_code")
        challenge = login(client, alice).get_json()["challenge_token"]
        limited = client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge,
                                                         "code": authenticator.at(time.time() + 30)})
        body = assert_problem(limited, 429, "rate_limited")
        assert body["limit"] == "mfa_code" and int(limited.headers["Retry-After"]) > 0


def test_turning_mfa_off_and_new_recovery_codes_need_a_recent_authentication(make_app, gen_user, tokens_for):
    app = make_app(REAUTH_MAX_AGE_MINUTES=10)
    client = app.test_client()
    with app.app_context():
        alice = gen_user()
        pair = tokens_for(alice)
        authenticator, _, tokens = enrol(client, bearer(pair["access_token"]))
        # Twenty minutes later (the token is re-dated rather than the clock moved), the same session refreshed:
        stale = stale_tokens(app, alice, tokens, minutes=20)
        for method, path in (("DELETE", "/mfa"), ("POST", "/mfa/recovery-codes")):
            refused = client.open(f"{AUTH}{path}", method=method, headers=bearer(stale))
            body = assert_problem(refused, 401, "reauthentication_required")
            assert body["max_age"] == 600
            assert 'error="insufficient_user_authentication"' in refused.headers["WWW-Authenticate"]
        changed = client.patch(f"{AUTH}/me", headers=bearer(stale),
                               json={"current_password": PASSWORD, "new_password": "another sound passphrase"})
        assert_problem(changed, 401, "reauthentication_required")

        # Re-authenticating needs the password and, MFA being on, a code.
        assert_problem(client.post(f"{AUTH}/reauthenticate", headers=bearer(stale), json={"password": PASSWORD}),
                       401, "mfa_code_required")
        assert_problem(client.post(f"{AUTH}/reauthenticate", headers=bearer(stale),
                                   json={"password": "wrong password!", "code": authenticator.now()}),
                       401, "invalid_credentials")
        fresh = client.post(f"{AUTH}/reauthenticate", headers=bearer(stale),
                            json={"password": PASSWORD, "code": authenticator.at(time.time() + 30)})
        assert fresh.status_code == 200, fresh.get_json()
        claims = decode_token(fresh.get_json()["access_token"])
        assert abs(claims["auth_time"] - time.time()) < 5 and claims["sid"] == decode_token(stale)["sid"]
        headers = bearer(fresh.get_json()["access_token"])
        assert len(client.post(f"{AUTH}/mfa/recovery-codes", headers=headers).get_json()["recovery_codes"]) == 10
        assert client.delete(f"{AUTH}/mfa", headers=headers).status_code == 204
        assert db.session.get(TotpFactor, alice.id) is None
        assert db.session.scalar(select(RecoveryCode).where(RecoveryCode.user_id == alice.id)) is None
        assert login(client, alice).status_code == 200  # tokens straight away again
        assert client.patch(f"{AUTH}/me", headers=headers, json={
            "current_password": PASSWORD, "new_password": "another sound passphrase"}).status_code == 200


def stale_tokens(app, user, tokens, *, minutes):
    """An access token of the same session and factors whose authentication is `minutes` old."""
    from flask_jwt_extended import create_access_token

    claims = decode_token(tokens["access_token"])
    return create_access_token(str(user.id), additional_claims={
        "role": user.role, "sid": claims["sid"], "amr": claims["amr"], "auth_time": int(time.time()) - minutes * 60})


def test_doctors_and_admins_must_enrol_when_the_deployment_requires_it(make_app, gen_user, gen_doctor):
    app = make_app(MFA_REQUIRED=True)
    client = app.test_client()
    with app.app_context():
        doctor, _ = gen_doctor()
        owner = gen_user()
        tokens = login(client, doctor).get_json()
        headers = bearer(tokens["access_token"])
        # Only what enrolling needs works until then.
        assert_problem(client.get("/api/v1/doctors/me", headers=headers), 403, "mfa_enrolment_required")
        assert client.get(f"{AUTH}/me", headers=headers).status_code == 200
        assert client.get(f"{AUTH}/mfa", headers=headers).get_json()["required"] is True
        assert_problem(client.post(f"{AUTH}/mfa/recovery-codes", headers=headers), 403, "mfa_enrolment_required")
        _, _, enrolled = enrol(client, headers)
        assert client.get("/api/v1/doctors/me", headers=bearer(enrolled["access_token"])).status_code == 200
        # The pre-enrolment token still lacks the factor; and MFA cannot be turned off for this role.
        assert_problem(client.get("/api/v1/doctors/me", headers=headers), 403, "mfa_enrolment_required")
        assert_problem(client.delete(f"{AUTH}/mfa", headers=bearer(enrolled["access_token"])), 409,
                       "mfa_required_for_role")
        assert login(client, doctor).status_code == 202
        # Patients are not required to, and keep working with a password alone.
        owner_tokens = login(client, owner).get_json()
        assert client.get("/api/v1/patients", headers=bearer(owner_tokens["access_token"])).status_code == 200


def test_a_promotion_to_a_role_that_requires_mfa_applies_at_once(make_app, gen_user):
    app = make_app(MFA_REQUIRED=True)
    client = app.test_client()
    with app.app_context():
        carol = gen_user()
        headers = bearer(login(client, carol).get_json()["access_token"])
        assert client.get("/api/v1/patients", headers=headers).status_code == 200
        carol.role = "admin"
        db.session.commit()
        assert_problem(client.get("/api/v1/admin/users", headers=headers), 403, "mfa_enrolment_required")


def test_sockets_of_accounts_that_must_enrol_are_refused(make_app, gen_user):
    from pawmanity.core.extensions import socketio

    app = make_app(MFA_REQUIRED=True)
    with app.app_context():
        admin = gen_user(role="admin")
        token = login(app.test_client(), admin).get_json()["access_token"]
        socket = socketio.test_client(app, namespace="/notifications", auth={"token": token})
        assert not socket.is_connected("/notifications")


def test_production_requires_mfa_of_doctors_and_admins_by_default(monkeypatch):
    import importlib

    import config

    monkeypatch.delenv("PAWMANITY_MFA_REQUIRED", raising=False)
    fresh = importlib.reload(config)
    try:
        assert fresh.ProductionConfig.MFA_REQUIRED is True
        assert fresh.DevelopmentConfig.MFA_REQUIRED is False and fresh.TestingConfig.MFA_REQUIRED is False
        assert set(fresh.Config.MFA_REQUIRED_ROLES) == {"doctor", "admin"}
    finally:
        importlib.reload(config)


def test_the_demo_has_a_doctor_who_signs_in_with_mfa(app, client):
    from pawmanity.demo import DEMO_MFA, DEMO_PASSWORD

    output = app.test_cli_runner().invoke(args=["demo", "load"]).output
    [(email, secret)] = DEMO_MFA.items()
    assert secret in output
    challenge = client.post(f"{AUTH}/login", json={"email": email, "password": DEMO_PASSWORD})
    assert challenge.status_code == 202
    signed_in = client.post(f"{AUTH}/login/mfa", json={"challenge_token": challenge.get_json()["challenge_token"],
                                                       "code": pyotp.TOTP(secret).now()})
    assert signed_in.status_code == 200
