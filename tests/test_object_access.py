"""Object-level authorization: every object endpoint of the care plugins, for each kind of caller.

The owner guards the patient; another patient does not; the doctor of record has an appointment with the patient;
another doctor has none; the admin sees everything. 404 means "not yours" as much as "not there".
"""

from datetime import timedelta

import pytest

from tests.support import iso, next_slot

ACTORS = ("owner", "other_patient", "doctor_of_record", "other_doctor", "admin")


@pytest.fixture
def world(gen_user, gen_patient, gen_doctor, gen_appointment, client, auth):
    owner, other_patient, admin = gen_user(), gen_user(), gen_user(role="admin")
    doctor_user, doctor = gen_doctor()
    other_doctor_user, _ = gen_doctor()
    pet = gen_patient(owner)
    gen_patient(other_patient)
    appointment = gen_appointment(doctor, pet, next_slot(hour=9))
    record = client.post(f"/api/v1/patients/{pet.id}/records", headers=auth(owner), json={
        "kind": "allergy", "title": "Chicken", "recorded_at": "2026-01-01T00:00:00Z"}).get_json()
    return {
        "users": {"owner": owner, "other_patient": other_patient, "doctor_of_record": doctor_user,
                  "other_doctor": other_doctor_user, "admin": admin},
        "pet": pet, "appointment": appointment, "record": record, "doctor": doctor,
    }


def prepare_status(world, status, start=None):
    from pawmanity.core.extensions import db

    world["appointment"].status = status
    if start is not None:
        world["appointment"].start_at, world["appointment"].end_at = start, start + timedelta(minutes=30)
    db.session.commit()


P = "/api/v1/patients/{pet}"
R = "/api/v1/patients/{pet}/records/{record}"
A = "/api/v1/appointments/{appointment}"
RECORD_BODY = {"kind": "note", "title": "Seen", "recorded_at": "2026-02-01T00:00:00Z"}

#          method  path                          body / setup                     owner oth  dor  odoc admin
MATRIX = [
    ("GET",    P,                             None,                             200, 404, 200, 404, 200),
    ("PATCH",  P,                             {"breed": "Mixed"},               200, 404, 403, 404, 200),
    ("DELETE", P,                             None,                             204, 404, 403, 404, 204),
    ("GET",    P + "/weights",                None,                             200, 404, 200, 404, 200),
    ("POST",   P + "/weights",                {"weight_kg": 9.5,
                                               "measured_at": "2026-11-01T00:00:00Z"}, 201, 404, 201, 404, 201),
    ("GET",    P + "/guardians",              None,                             200, 404, 403, 404, 200),
    ("POST",   P + "/invitations",            {"email": "x@example.com"},       201, 404, 403, 404, 201),
    # the owner is the primary guardian, who cannot be removed (409) -- but only those who may see it learn that
    ("DELETE", P + "/guardians/{owner}",      None,                             409, 404, 403, 404, 409),
    ("GET",    P + "/records",                None,                             200, 404, 200, 404, 200),
    ("POST",   P + "/records",                RECORD_BODY,                      201, 404, 201, 404, 201),
    ("GET",    R,                             None,                             200, 404, 200, 404, 200),
    ("PATCH",  R,                             {"title": "Chicken and beef"},    200, 404, 200, 404, 200),
    ("GET",    R + "/versions",               None,                             200, 404, 200, 404, 200),
    ("GET",    A,                             None,                             200, 404, 200, 404, 200),
    ("POST",   A + "/confirm",                "requested",                      403, 404, 200, 404, 200),
    ("POST",   A + "/cancel",                 {"reason": "Changed plans"},      200, 404, 200, 404, 200),
    ("POST",   A + "/complete",               "confirmed",                      403, 404, 200, 404, 200),
    ("POST",   A + "/no-show",                "confirmed-past",                 403, 404, 200, 404, 200),
    ("POST",   A + "/reschedule",             "reschedule",                     200, 404, 200, 404, 200),
]

CASES = [pytest.param(method, path, body, actor, expected, id=f"{method} {path} as {actor}")
         for method, path, body, *statuses in MATRIX for actor, expected in zip(ACTORS, statuses)]


@pytest.mark.parametrize("method, path, body, actor, expected", CASES)
def test_object_access(client, auth, world, method, path, body, actor, expected):
    url = path.format(pet=world["pet"].id, record=world["record"]["id"], appointment=world["appointment"].id,
                      owner=world["users"]["owner"].id)
    headers = auth(world["users"][actor])
    if body == "requested":
        body = None
    elif body == "confirmed":
        prepare_status(world, "confirmed")
        body = None
    elif body == "confirmed-past":
        prepare_status(world, "confirmed", next_slot(days=-1))
        body = None
    elif body == "reschedule":
        body = {"start": iso(next_slot(hour=14))}
    if method == "PATCH" and "/records/" in url:
        headers["If-Match"] = '"1"'
    response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code == expected, response.get_data(as_text=True)
