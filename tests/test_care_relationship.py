"""A doctor sees a patient while a care relationship holds, decided by the appointments between them now, not by
any appointment that ever existed (pawmanity/care/access.py)."""

from datetime import timedelta

import pytest

from pawmanity.core.database import utcnow
from tests.support import assert_problem

PATIENTS = "/api/v1/patients"
DAY = timedelta(days=1)


def started(days_ago):
    """An appointment start `days_ago` days in the past (negative: in the future), on the half hour."""
    moment = utcnow() - days_ago * DAY
    return moment.replace(minute=0 if moment.minute < 30 else 30, second=0, microsecond=0)


@pytest.fixture
def scene(gen_user, gen_patient, gen_doctor):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    return owner, gen_patient(owner), doctor_user, doctor


def doctor_sees(client, auth, doctor_user, pet):
    single = client.get(f"{PATIENTS}/{pet.id}", headers=auth(doctor_user))
    listed = client.get("/api/v1/doctors/me/patients", headers=auth(doctor_user)).get_json()["items"]
    assert (single.status_code == 200) == (str(pet.id) in [p["id"] for p in listed])  # one rule for both
    if single.status_code != 200:
        assert_problem(single, 404)
    return single.status_code == 200


@pytest.mark.parametrize("status, days_ago, sees", [
    ("requested", -2, True),      # pending: the doctor may look before confirming
    ("requested", 2, False),      # a request that lapsed unconfirmed
    ("cancelled", -2, False),     # cancelled before it was ever confirmed (the reported case)
    ("cancelled", 2, False),      # cancelled, whenever: no care given
    ("confirmed", -2, True),      # upcoming visit
    ("in_progress", 0, True),
    ("completed", 30, True),      # within the follow-up period
    ("no_show", 30, True),
    ("completed", 200, False),    # past the 180-day follow-up period
    ("confirmed", 200, False),    # confirmed long ago, never closed
])
def test_each_appointment_status_and_age(client, auth, scene, gen_appointment, status, days_ago, sees):
    owner, pet, doctor_user, doctor = scene
    gen_appointment(doctor, pet, started(days_ago), status=status)
    assert doctor_sees(client, auth, doctor_user, pet) is sees


def test_a_request_cancelled_before_confirmation_ends_access(client, auth, scene, gen_appointment):
    from pawmanity.core.extensions import db

    owner, pet, doctor_user, doctor = scene
    appointment = gen_appointment(doctor, pet, started(-2), status="requested")
    assert doctor_sees(client, auth, doctor_user, pet)
    appointment.status = "cancelled"
    db.session.commit()
    assert not doctor_sees(client, auth, doctor_user, pet)
    assert_problem(client.get(f"{PATIENTS}/{pet.id}/records", headers=auth(doctor_user)), 404)


def test_the_follow_up_period_is_configurable(make_app, gen_user, gen_patient, gen_doctor, gen_appointment):
    from pawmanity.core.extensions import db
    from pawmanity.identity import tokens
    from pawmanity.identity.actor import Actor

    app = make_app(DOCTOR_ACCESS_DAYS_AFTER_VISIT=7)
    with app.app_context():
        owner = gen_user()
        pet = gen_patient(owner)
        doctor_user, doctor = gen_doctor()
        gen_appointment(doctor, pet, started(10), status="completed")
        headers = {"Authorization": "Bearer " + tokens.issue_session(doctor_user, Actor())["access_token"]}
        db.session.commit()
        pet_id = pet.id
    assert_problem(app.test_client().get(f"{PATIENTS}/{pet_id}", headers=headers), 404)


def test_a_later_visit_renews_the_relationship(client, auth, scene, gen_appointment):
    owner, pet, doctor_user, doctor = scene
    gen_appointment(doctor, pet, started(400), status="completed")
    assert not doctor_sees(client, auth, doctor_user, pet)
    gen_appointment(doctor, pet, started(20), status="completed")
    assert doctor_sees(client, auth, doctor_user, pet)
