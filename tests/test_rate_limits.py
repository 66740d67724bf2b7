"""Limits where abuse is cheap: each answers 429 with Retry-After (a Socket.IO event gets an error ack), is set by
configuration, and keeps counting in memory when Redis is away."""

from datetime import timedelta

import pytest
from flask_socketio import SocketIOTestClient

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import socketio
from tests.live_server import free_port
from tests.support import PASSWORD, assert_problem, bearer
from tests.test_diagnoses import URL as DIAGNOSES
from tests.test_diagnoses import body as diagnosis_body
from tests.test_uploads import png, upload

REGISTER = "/api/v1/auth/register"
ME = "/api/v1/auth/me"


def assert_limited(response):
    body = assert_problem(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    return body


@pytest.fixture
def owner_and_dog(gen_user, gen_patient):
    owner = gen_user()
    return owner, gen_patient(owner, species="dog")


def test_registration_is_limited_per_client_address(make_app):
    client = make_app(REGISTER_RATE_LIMIT="3 per hour").test_client()

    def sign_up(n, address="10.1.1.1"):
        return client.post(REGISTER, environ_base={"REMOTE_ADDR": address}, json={
            "email": f"new{n}@example.com", "password": PASSWORD, "full_name": "New Person", "role": "patient"})

    assert [sign_up(n).status_code for n in range(3)] == [201] * 3
    assert_limited(sign_up(3))
    assert sign_up(4, address="10.1.1.2").status_code == 201


def test_wrong_current_passwords_are_limited_per_account(make_app, gen_user, auth):
    client = make_app(PASSWORD_CHECK_RATE_LIMIT="3 per 15 minutes").test_client()
    user, bystander = gen_user(), gen_user()
    headers = auth(user)
    # Changes that need no password, and a right password, count for nothing.
    for n in range(4):
        assert client.patch(ME, headers=headers, json={"full_name": f"Name {n}"}).status_code == 200
    assert client.patch(ME, headers=headers, json={"current_password": PASSWORD,
                                                   "new_password": "another sound passphrase"}).status_code == 200
    for _ in range(3):
        assert_problem(client.patch(ME, headers=headers, json={"current_password": "a guess at it",
                                                               "new_password": "yet another passphrase"}), 422)
    # The next attempt is refused before the password is even checked, right or wrong.
    body = assert_limited(client.patch(ME, headers=headers, json={"current_password": "another sound passphrase",
                                                                  "new_password": "yet another passphrase"}))
    assert body["limit"] == "password_check"
    assert client.patch(ME, headers=auth(bystander), json={
        "current_password": PASSWORD, "new_password": "a bystander's passphrase"}).status_code == 200


def test_ai_diagnoses_are_limited_per_account(make_app, auth, owner_and_dog, gen_user, gen_patient):
    client = make_app(DIAGNOSIS_RATE_LIMIT="2 per hour").test_client()
    owner, dog = owner_and_dog
    for _ in range(2):
        # The dogs here have no date of birth, so the symptom checker is told their age.
        assert client.post(DIAGNOSES, headers=auth(owner),
                           json=diagnosis_body(dog, "cough", age_years=4)).status_code == 201
    assert_limited(client.post(DIAGNOSES, headers=auth(owner), json=diagnosis_body(dog, "cough", age_years=4)))
    other = gen_user()
    other_dog = gen_patient(other, species="dog")
    assert client.post(DIAGNOSES, headers=auth(other),
                       json=diagnosis_body(other_dog, "cough", age_years=4)).status_code == 201


def test_uploads_are_limited_in_number(make_app, auth, owner_and_dog):
    client = make_app(UPLOAD_RATE_LIMIT="2 per hour").test_client()
    owner, dog = owner_and_dog
    for side in (10, 11):
        assert upload(client, auth(owner), dog, png(side, side), "a.png", "image/png").status_code == 201
    assert_limited(upload(client, auth(owner), dog, png(12, 12), "a.png", "image/png"))


def test_uploads_are_limited_in_bytes(make_app, auth, owner_and_dog):
    owner, dog = owner_and_dog
    first, second = png(300, 200), png(301, 200)
    client = make_app(UPLOAD_BYTES_RATE_LIMIT=f"{len(first) + len(second) - 1} per hour").test_client()
    assert upload(client, auth(owner), dog, first, "a.png", "image/png").status_code == 201
    body = assert_limited(upload(client, auth(owner), dog, second, "b.png", "image/png"))
    assert body["limit"] == "upload_bytes"
    # A refused upload spent nothing: a small one still fits in what is left.
    assert upload(client, auth(owner), dog, png(8, 8), "c.png", "image/png").status_code == 201


def test_guardian_invitations_are_limited_per_account(make_app, auth, owner_and_dog):
    client = make_app(INVITATION_RATE_LIMIT="2 per day").test_client()
    owner, dog = owner_and_dog

    def invite(n):
        return client.post(f"/api/v1/patients/{dog.id}/invitations", headers=auth(owner),
                           json={"email": f"family{n}@example.com", "relation": "family"})

    assert [invite(n).status_code for n in range(2)] == [201, 201]
    assert_limited(invite(2))


def test_typing_events_are_limited_with_an_error_ack(make_app, client, gen_user, gen_patient, gen_doctor,
                                                     gen_appointment, tokens_for):
    app = make_app(TYPING_RATE_LIMIT="3 per minute")
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    pet = gen_patient(owner)
    appointment = gen_appointment(doctor, pet, utcnow() - timedelta(minutes=5), status="confirmed")
    consultation = app.test_client().post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                                          headers=bearer(tokens_for(doctor_user)["access_token"])).get_json()
    socket = SocketIOTestClient(app, socketio, namespace="/chat",
                                auth={"token": tokens_for(owner)["access_token"]})
    acks = [socket.emit("typing", {"consultation_id": consultation["id"]}, namespace="/chat", callback=True)
            for _ in range(4)]
    assert [ack.get("ok") for ack in acks[:3]] == [True] * 3
    assert acks[3]["error"]["status"] == 429 and acks[3]["error"]["code"] == "rate_limited"
    assert acks[3]["error"]["retry_after"] > 0
    assert socket.is_connected("/chat")


def test_limits_keep_counting_in_memory_while_redis_is_down(make_app, auth, owner_and_dog, caplog):
    down = f"redis://127.0.0.1:{free_port()}/0"
    client = make_app(RATELIMIT_STORAGE_URI=down, INVITATION_RATE_LIMIT="2 per day").test_client()
    owner, dog = owner_and_dog

    def invite(n):
        return client.post(f"/api/v1/patients/{dog.id}/invitations", headers=auth(owner),
                           json={"email": f"family{n}@example.com", "relation": "family"})

    assert [invite(n).status_code for n in range(2)] == [201, 201]
    assert_limited(invite(2))
    # One line when the storage is found down, not one per request.
    assert sum("rate-limit storage unreachable" in r.getMessage() for r in caplog.records) == 1
