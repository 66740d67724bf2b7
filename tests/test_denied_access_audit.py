"""A signed-in caller refused another user's patient data leaves exactly one audit row with outcome `denied`,
and the hash chain stays whole."""

import uuid

import pytest
from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.audit.models import AuditEvent
from pawmanity.core.extensions import db
from tests.support import assert_problem


@pytest.fixture
def scene(gen_user, gen_patient, client, auth):
    owner, stranger = gen_user(), gen_user()
    pet = gen_patient(owner)
    record = client.post(f"/api/v1/patients/{pet.id}/records", json={"kind": "note", "title": "Limping", "recorded_at": "2026-01-02T10:00:00Z"},
                         headers=auth(owner))
    assert record.status_code == 201, record.get_data(as_text=True)
    return owner, stranger, pet, record.get_json()


def denied_rows():
    return db.session.scalars(select(AuditEvent).where(AuditEvent.outcome == trail.DENIED)
                              .order_by(AuditEvent.id)).all()


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/patients/{pet}"),
    ("get", "/api/v1/patients/{pet}/records"),
    ("get", "/api/v1/patients/{pet}/records/{record}"),
    ("patch", "/api/v1/patients/{pet}"),
])
def test_a_refused_read_leaves_one_denied_row(client, auth, scene, method, path):
    owner, stranger, pet, record = scene
    url = path.format(pet=pet.id, record=record["id"])
    response = getattr(client, method)(url, headers=auth(stranger), **({"json": {"name": "Mine now"}}
                                                                      if method == "patch" else {}))
    assert_problem(response, 404)
    [row] = denied_rows()
    assert (row.actor_id, row.actor_role, row.object_type, row.object_id) == (stranger.id, "patient", "patient",
                                                                              str(pet.id))
    assert row.detail == {"request": f"{method.upper()} {url}", "status": 404}
    trail.chain_pending(wait=True)
    assert trail.verify_chain()[1:4] == (None, None, 0)


def test_seen_but_not_allowed_is_denied_with_403(client, auth, scene, gen_doctor, gen_appointment):
    from tests.support import next_slot

    owner, stranger, pet, record = scene
    doctor_user, doctor = gen_doctor()
    gen_appointment(doctor, pet, next_slot(), status="confirmed")
    assert_problem(client.delete(f"/api/v1/patients/{pet.id}", headers=auth(doctor_user)), 403)
    [row] = denied_rows()
    assert row.actor_id == doctor_user.id and row.detail["status"] == 403


def test_an_unknown_patient_id_is_denied_too(client, auth, scene):
    stranger = scene[1]
    missing = uuid.uuid4()
    assert_problem(client.get(f"/api/v1/patients/{missing}", headers=auth(stranger)), 404)
    assert [row.object_id for row in denied_rows()] == [str(missing)]


def test_anonymous_callers_never_reach_patient_data(client, scene):
    assert_problem(client.get(f"/api/v1/patients/{scene[2].id}"), 401)
    assert denied_rows() == []


def test_allowed_reads_write_no_denied_row(client, auth, scene):
    owner, _, pet, _ = scene
    assert client.get(f"/api/v1/patients/{pet.id}", headers=auth(owner)).status_code == 200
    assert denied_rows() == []


def test_a_stranger_refused_a_consultation_is_denied(client, auth, gen_user, gen_patient, gen_doctor,
                                                     gen_appointment):
    from datetime import timedelta

    from pawmanity.core.database import utcnow

    owner, stranger = gen_user(), gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=5), status="confirmed")
    consultation = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                               headers=auth(doctor_user)).get_json()
    assert_problem(client.get(f"/api/v1/consultations/{consultation['id']}/messages", headers=auth(stranger)), 404)
    [row] = denied_rows()
    assert (row.actor_id, row.object_type, row.object_id) == (stranger.id, "consultation", consultation["id"])
