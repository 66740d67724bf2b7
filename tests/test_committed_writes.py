"""A committed write is never reported as failed, and a retried POST with an Idempotency-Key stores once."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pawmanity.care.models import GuardianInvitation, MedicalRecord, Patient, Upload
from pawmanity.conversations.models import Consultation
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.core.idempotency import IdempotencyKey
from pawmanity.scheduling.models import Appointment
from tests.support import assert_problem, iso, next_slot
from tests.test_uploads import png, upload

PATIENTS = "/api/v1/patients"
BISCUIT = {"name": "Biscuit", "species": "dog", "sex": "male"}


@contextmanager
def connection_lost_after_commit(app):
    """From the first commit of a write inside the block on, every SQL statement fails as if the connection had
    dropped. (Authentication commits its read-only lookup first; that one does not count.)"""
    state = {"armed": False, "wrote": False}

    def wrote(session, flush_context):
        state["wrote"] = True

    def arm(session):
        state["armed"] = state["wrote"]

    def fail(conn, cursor, statement, parameters, context, executemany):
        if state["armed"]:
            raise OperationalError(statement, parameters, Exception("server closed the connection unexpectedly"))

    engine = db.engine
    event.listen(Session, "after_flush", wrote)
    event.listen(Session, "after_commit", arm)
    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(Session, "after_flush", wrote)
        event.remove(Session, "after_commit", arm)
        event.remove(engine, "before_cursor_execute", fail)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def scene(gen_user, gen_patient, gen_doctor):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    return {"owner": owner, "pet": gen_patient(owner), "doctor_user": doctor_user, "doctor": doctor}


def create_patient(client, headers, scene):
    return client.post(PATIENTS, json=BISCUIT, headers=headers(scene["owner"])), Patient, 2


def create_record(client, headers, scene):
    return client.post(f"{PATIENTS}/{scene['pet'].id}/records", headers=headers(scene["owner"]),
                       json={"kind": "note", "title": "Limping", "recorded_at": "2026-11-01T10:00:00Z"}), MedicalRecord, 1


def create_appointment(client, headers, scene):
    return client.post("/api/v1/appointments", headers=headers(scene["owner"]), json={
        "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "start": iso(next_slot()),
        "type": "video", "reason": "Itchy ears"}), Appointment, 1


def create_upload(client, headers, scene):
    return (upload(client, headers(scene["owner"]), scene["pet"], png(), filename="x.png",
                   content_type="image/png"), Upload, 1)


def create_invitation(client, headers, scene):
    return client.post(f"{PATIENTS}/{scene['pet'].id}/invitations", headers=headers(scene["owner"]),
                       json={"email": "aunt@example.com", "relation": "family"}), GuardianInvitation, 1


def create_consultation(client, headers, scene):
    appointment = scene["appointment"]
    return (client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                        headers=headers(scene["doctor_user"])), Consultation, 1)


CREATORS = [create_patient, create_record, create_appointment, create_upload, create_invitation]


@pytest.mark.parametrize("create", CREATORS + [create_consultation], ids=lambda f: f.__name__)
def test_the_answer_needs_no_database_after_the_commit(app, client, auth, scene, gen_appointment, create):
    headers = {user.id: auth(user) for user in (scene["owner"], scene["doctor_user"])}
    scene["appointment"] = gen_appointment(scene["doctor"], scene["pet"], utcnow() - timedelta(minutes=5),
                                           status="confirmed")
    before = {model: count(model) for model in (Patient, MedicalRecord, Appointment, Upload, GuardianInvitation,
                                                Consultation)}
    with connection_lost_after_commit(app):
        response, model, _ = create(client, lambda user: headers[user.id], scene)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["id"]
    assert count(model) == before[model] + 1


class TestIdempotencyKey:
    @pytest.mark.parametrize("create", CREATORS, ids=lambda f: f.__name__)
    def test_a_retry_with_the_same_key_replays_the_answer(self, client, auth, scene, create):
        def with_key(user):
            return {**auth(user), "Idempotency-Key": "retry-1"}

        first, model, expected_rows = create(client, with_key, scene)
        again, _, _ = create(client, with_key, scene)
        assert first.status_code == again.status_code == 201
        assert again.get_json() == first.get_json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers.get("Location") == first.headers.get("Location")
        assert count(model) == expected_rows

    def test_the_same_key_with_another_body_is_422(self, client, auth, scene):
        headers = {**auth(scene["owner"]), "Idempotency-Key": "k-1"}
        assert client.post(PATIENTS, json=BISCUIT, headers=headers).status_code == 201
        other = client.post(PATIENTS, json={**BISCUIT, "name": "Rex"}, headers=headers)
        assert_problem(other, 422, "idempotency_key_reused")
        assert count(Patient) == 2

    def test_the_same_key_on_another_endpoint_is_422(self, client, auth, scene):
        headers = {**auth(scene["owner"]), "Idempotency-Key": "k-2"}
        assert client.post(PATIENTS, json=BISCUIT, headers=headers).status_code == 201
        other = client.post(f"{PATIENTS}/{scene['pet'].id}/records", headers=headers, json=BISCUIT)
        assert_problem(other, 422, "idempotency_key_reused")

    def test_keys_belong_to_their_user(self, client, auth, scene, gen_user):
        someone_else = gen_user()
        for user in (scene["owner"], someone_else):
            response = client.post(PATIENTS, json=BISCUIT, headers={**auth(user), "Idempotency-Key": "same"})
            assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        assert count(Patient) == 3

    def test_a_refused_request_releases_its_key(self, client, auth, scene):
        headers = {**auth(scene["owner"]), "Idempotency-Key": "k-3"}
        assert_problem(client.post(PATIENTS, json={**BISCUIT, "species": "dragon"}, headers=headers), 422)
        assert client.post(PATIENTS, json=BISCUIT, headers=headers).status_code == 201

    def test_a_key_still_in_use_is_409(self, client, auth, scene):
        db.session.add(IdempotencyKey(user_id=scene["owner"].id, key="busy", fingerprint="0" * 64,
                                      expires_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
        response = client.post(PATIENTS, json=BISCUIT, headers={**auth(scene["owner"]), "Idempotency-Key": "busy"})
        # The stored fingerprint differs, so this is the reuse case; an identical request waits instead.
        assert_problem(response, 422, "idempotency_key_reused")
        row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "busy"))
        first = client.post(PATIENTS, json=BISCUIT, headers={**auth(scene["owner"]), "Idempotency-Key": "fresh"})
        fresh = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "fresh"))
        row.fingerprint, row.status = fresh.fingerprint, None
        db.session.commit()
        assert first.status_code == 201
        in_use = client.post(PATIENTS, json=BISCUIT, headers={**auth(scene["owner"]), "Idempotency-Key": "busy"})
        assert_problem(in_use, 409, "idempotency_key_in_use")
        assert "Retry-After" in in_use.headers

    def test_keys_expire(self, make_app, gen_user):
        app = make_app(IDEMPOTENCY_KEY_HOURS=0)
        with app.app_context():
            from pawmanity.identity import tokens
            from pawmanity.identity.actor import Actor

            owner = gen_user()
            headers = {"Authorization": "Bearer " + tokens.issue_session(owner, Actor())["access_token"],
                       "Idempotency-Key": "short-lived"}
            db.session.commit()
        client = app.test_client()
        assert client.post(PATIENTS, json=BISCUIT, headers=headers).status_code == 201
        again = client.post(PATIENTS, json=BISCUIT, headers=headers)
        assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers

    def test_a_malformed_key_is_422(self, client, auth, scene):
        response = client.post(PATIENTS, json=BISCUIT, headers={**auth(scene["owner"]), "Idempotency-Key": "x" * 256})
        assert_problem(response, 422, "invalid_idempotency_key")
