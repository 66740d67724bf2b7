"""Patients for people and animals, guardianship, weights and profile versions."""

import email
import re
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from pawmanity.care.models import GuardianInvitation, Guardianship, Patient
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from tests.support import PASSWORD, assert_problem

PATIENTS = "/api/v1/patients"
BISCUIT = {"name": "Biscuit", "species": "dog", "breed": "Beagle", "sex": "male_neutered",
           "date_of_birth": "2021-04-03", "microchip_id": "985112003456789", "weight_kg": 12.4}


def test_registering_as_a_patient_creates_their_own_record(client):
    response = client.post("/api/v1/auth/register", json={"email": "eve@example.com", "password": PASSWORD,
                                                          "full_name": "Eve Adams", "role": "patient"})
    user_id = uuid.UUID(response.get_json()["id"])
    patient = db.session.scalar(select(Patient).join(Guardianship).where(Guardianship.user_id == user_id))
    assert (patient.name, patient.species) == ("Eve Adams", "human")
    assert patient.guardianships[0].relation == "self" and patient.guardianships[0].is_primary


def test_doctors_get_no_patient_record_at_registration(client):
    client.post("/api/v1/auth/register", json={"email": "doc@example.com", "password": PASSWORD,
                                               "full_name": "Dr. Who", "role": "doctor"})
    assert db.session.scalar(select(Patient)) is None


def test_owner_adds_a_pet_and_sees_it(client, gen_user, auth):
    owner = gen_user()
    response = client.post(PATIENTS, json=BISCUIT, headers=auth(owner))
    assert response.status_code == 201
    body = response.get_json()
    assert body["species"] == "dog" and body["weight_kg"] == 12.4 and body["microchip_id"] == "985112003456789"
    assert response.headers["ETag"] == '"1"'
    listed = client.get(PATIENTS, headers=auth(owner)).get_json()
    assert [p["name"] for p in listed["items"]] == ["Biscuit"]


def test_others_cannot_see_the_pet(client, gen_user, gen_patient, auth):
    pet = gen_patient(gen_user())
    stranger = gen_user()
    assert_problem(client.get(f"{PATIENTS}/{pet.id}", headers=auth(stranger)), 404)
    assert client.get(PATIENTS, headers=auth(stranger)).get_json()["total"] == 0


def test_doctors_see_patients_only_through_appointments(client, gen_user, gen_patient, gen_doctor,
                                                        gen_appointment, auth):
    from tests.support import next_slot

    pet = gen_patient(gen_user())
    doctor_user, doctor = gen_doctor()
    assert_problem(client.get(f"{PATIENTS}/{pet.id}", headers=auth(doctor_user)), 404)
    gen_appointment(doctor, pet, next_slot())
    assert client.get(f"{PATIENTS}/{pet.id}", headers=auth(doctor_user)).status_code == 200
    mine = client.get("/api/v1/doctors/me/patients", headers=auth(doctor_user)).get_json()
    assert [p["id"] for p in mine["items"]] == [str(pet.id)]


@pytest.mark.parametrize("changes, field", [
    ({"species": "dragon"}, "species"),
    ({"weight_kg": -3}, "weight_kg"),
    ({"weight_kg": 0}, "weight_kg"),
    ({"sex": "sometimes"}, "sex"),
    ({"microchip_id": "../../etc"}, "microchip_id"),
    ({"date_of_birth": "yesterday"}, "date_of_birth"),
    ({"name": ""}, "name"),
])
def test_bad_patient_input(client, gen_user, auth, changes, field):
    body = assert_problem(client.post(PATIENTS, json={**BISCUIT, **changes}, headers=auth(gen_user())), 422)
    assert field in body["errors"]
    assert db.session.scalar(select(Patient)) is None


@pytest.mark.parametrize("changes, field, code", [
    ({"species": "human", "sex": "male_neutered", "microchip_id": None}, "sex", "not_for_people"),
    ({"species": "human", "sex": "female"}, "microchip_id", "not_for_people"),
    ({"date_of_birth": (date.today() + timedelta(days=2)).isoformat()}, "date_of_birth", "born_in_future"),
])
def test_profile_rules_beyond_the_schema(client, gen_user, auth, changes, field, code):
    body = assert_problem(client.post(PATIENTS, json={**BISCUIT, **changes}, headers=auth(gen_user())), 422, code)
    assert field in body["errors"]


def test_the_rule_for_people_is_stated_and_a_change_meets_it_as_its_own_refusal(client, gen_user, auth):
    # A new patient's species is in the body, so the document states the rule; a change is checked against the
    # stored species, which no schema sees, so it is a refusal with its own code.
    rules = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["PatientIn"]["anyOf"]
    assert rules[0]["properties"]["species"] == {"not": {"enum": ["human"]}}
    owner = gen_user()
    person = client.post(PATIENTS, json={"name": "Ann", "species": "human", "sex": "female"}, headers=auth(owner))
    assert person.status_code == 201, person.get_json()
    refused = client.patch(f"{PATIENTS}/{person.get_json()['id']}", json={"sex": "female_spayed"}, headers=auth(owner))
    assert "sex" in assert_problem(refused, 422, "not_for_people")["errors"]


def test_doctors_cannot_create_patients(client, gen_user, auth):
    assert_problem(client.post(PATIENTS, json=BISCUIT, headers=auth(gen_user(role="doctor"))), 403)


class TestVersions:
    def test_patch_bumps_the_etag(self, client, gen_user, auth):
        owner = gen_user()
        created = client.post(PATIENTS, json=BISCUIT, headers=auth(owner))
        pid = created.get_json()["id"]
        response = client.patch(f"{PATIENTS}/{pid}", json={"breed": "Beagle mix"},
                                headers={**auth(owner), "If-Match": created.headers["ETag"]})
        assert response.status_code == 200 and response.headers["ETag"] == '"2"'
        assert client.get(f"{PATIENTS}/{pid}", headers=auth(owner)).headers["ETag"] == '"2"'

    def test_stale_if_match_is_412_and_changes_nothing(self, client, gen_user, auth):
        owner = gen_user()
        pid = client.post(PATIENTS, json=BISCUIT, headers=auth(owner)).get_json()["id"]
        client.patch(f"{PATIENTS}/{pid}", json={"breed": "Beagle mix"}, headers=auth(owner))
        response = client.patch(f"{PATIENTS}/{pid}", json={"name": "Old news"},
                                headers={**auth(owner), "If-Match": '"1"'})
        assert_problem(response, 412, "stale_version")
        assert client.get(f"{PATIENTS}/{pid}", headers=auth(owner)).get_json()["name"] == "Biscuit"

    @pytest.mark.parametrize("header", ["1", '"abc"', 'W/"1"', '"1", "2"', ""])
    def test_malformed_if_match_is_412(self, client, gen_user, auth, header):
        owner = gen_user()
        pid = client.post(PATIENTS, json=BISCUIT, headers=auth(owner)).get_json()["id"]
        response = client.patch(f"{PATIENTS}/{pid}", json={"name": "X"}, headers={**auth(owner), "If-Match": header})
        assert_problem(response, 412, "malformed_if_match")

    def test_species_cannot_be_changed(self, client, gen_user, auth):
        owner = gen_user()
        pid = client.post(PATIENTS, json=BISCUIT, headers=auth(owner)).get_json()["id"]
        assert_problem(client.patch(f"{PATIENTS}/{pid}", json={"species": "cat"}, headers=auth(owner)), 422)


class TestWeights:
    def test_weight_history_and_current_weight(self, client, gen_user, gen_patient, auth):
        owner = gen_user()
        pet = gen_patient(owner)
        for days_ago, kilos in ((30, 11.0), (1, 12.25), (10, 11.8)):
            measured = (utcnow() - timedelta(days=days_ago)).isoformat()
            assert client.post(f"{PATIENTS}/{pet.id}/weights", json={"weight_kg": kilos, "measured_at": measured},
                               headers=auth(owner)).status_code == 201
        history = client.get(f"{PATIENTS}/{pet.id}/weights", headers=auth(owner)).get_json()
        assert [w["weight_kg"] for w in history["items"]] == [12.25, 11.8, 11.0]
        assert client.get(f"{PATIENTS}/{pet.id}", headers=auth(owner)).get_json()["weight_kg"] == 12.25

    def test_negative_weight_is_refused(self, client, gen_user, gen_patient, auth):
        owner = gen_user()
        pet = gen_patient(owner)
        body = assert_problem(client.post(f"{PATIENTS}/{pet.id}/weights",
                                          json={"weight_kg": -1, "measured_at": utcnow().isoformat()},
                                          headers=auth(owner)), 422)
        assert "weight_kg" in body["errors"]


class TestArchive:
    def test_archived_patients_vanish_but_their_history_stays(self, client, gen_user, gen_patient, auth):
        owner, admin = gen_user(), gen_user(role="admin")
        pet = gen_patient(owner)
        assert client.delete(f"{PATIENTS}/{pet.id}", headers=auth(owner)).status_code == 204
        assert_problem(client.get(f"{PATIENTS}/{pet.id}", headers=auth(owner)), 404)
        assert client.get(PATIENTS, headers=auth(owner)).get_json()["total"] == 0
        assert client.get(f"{PATIENTS}/{pet.id}", headers=auth(admin)).get_json()["archived_at"] is not None

    def test_only_the_primary_guardian_archives(self, client, gen_user, gen_patient, auth):
        owner, co_owner = gen_user(), gen_user()
        pet = gen_patient(owner)
        db.session.add(Guardianship(patient_id=pet.id, user_id=co_owner.id, relation="co_owner"))
        db.session.commit()
        assert_problem(client.delete(f"{PATIENTS}/{pet.id}", headers=auth(co_owner)), 403)


def invitation_code(app):
    from pathlib import Path

    outbox = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    message = email.message_from_bytes(outbox[-1].read_bytes())
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    return message, re.search(r"^([A-Za-z0-9_-]{40,})$", body, re.M).group(1)


class TestGuardianInvitations:
    def invite(self, client, auth, owner, pet, address="gran@example.com"):
        return client.post(f"{PATIENTS}/{pet.id}/invitations", json={"email": address, "relation": "family"},
                           headers=auth(owner))

    def test_invited_account_becomes_a_guardian(self, app, client, gen_user, gen_patient, auth):
        owner, gran = gen_user(), gen_user(email="gran@example.com")
        pet = gen_patient(owner, name="Miso")
        assert self.invite(client, auth, owner, pet).status_code == 201
        message, code = invitation_code(app)
        assert message["To"] == "gran@example.com" and "Miso" in message.get_payload(decode=True).decode()
        accepted = client.post("/api/v1/guardian-invitations/accept", json={"token": code}, headers=auth(gran))
        assert accepted.status_code == 200 and accepted.get_json()["id"] == str(pet.id)
        assert client.get(f"{PATIENTS}/{pet.id}", headers=auth(gran)).status_code == 200
        guardians = client.get(f"{PATIENTS}/{pet.id}/guardians", headers=auth(owner)).get_json()
        assert [g["relation"] for g in guardians["items"]] == ["owner", "family"] and guardians["total"] == 2
        second = client.get(f"{PATIENTS}/{pet.id}/guardians?per_page=1&page=2", headers=auth(owner)).get_json()
        assert (second["items"], second["page"], second["per_page"], second["total"]) == (
            guardians["items"][1:], 2, 1, 2)

    def test_an_invitation_works_once(self, app, client, gen_user, gen_patient, auth):
        owner, gran = gen_user(), gen_user(email="gran@example.com")
        self.invite(client, auth, owner, gen_patient(owner))
        _, code = invitation_code(app)
        client.post("/api/v1/guardian-invitations/accept", json={"token": code}, headers=auth(gran))
        reused = client.post("/api/v1/guardian-invitations/accept", json={"token": code}, headers=auth(gran))
        assert_problem(reused, 409, "invitation_used")

    def test_an_expired_invitation_is_refused(self, app, client, gen_user, gen_patient, auth):
        owner, gran = gen_user(), gen_user(email="gran@example.com")
        pet = gen_patient(owner)
        self.invite(client, auth, owner, pet)
        _, code = invitation_code(app)
        invitation = db.session.scalar(select(GuardianInvitation))
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        response = client.post("/api/v1/guardian-invitations/accept", json={"token": code}, headers=auth(gran))
        assert_problem(response, 409, "invitation_expired")
        assert_problem(client.get(f"{PATIENTS}/{pet.id}", headers=auth(gran)), 404)

    def test_only_the_invited_address_can_accept(self, app, client, gen_user, gen_patient, auth):
        owner, thief = gen_user(), gen_user(email="thief@example.com")
        self.invite(client, auth, owner, gen_patient(owner))
        _, code = invitation_code(app)
        response = client.post("/api/v1/guardian-invitations/accept", json={"token": code}, headers=auth(thief))
        assert_problem(response, 404)

    def test_a_made_up_code_is_404(self, client, gen_user, auth):
        response = client.post("/api/v1/guardian-invitations/accept", json={"token": "x" * 43},
                               headers=auth(gen_user()))
        assert_problem(response, 404, "invitation_not_found")

    def test_removing_a_guardian_ends_their_access(self, client, gen_user, gen_patient, auth):
        owner, co_owner = gen_user(), gen_user()
        pet = gen_patient(owner)
        db.session.add(Guardianship(patient_id=pet.id, user_id=co_owner.id, relation="co_owner"))
        db.session.commit()
        assert client.delete(f"{PATIENTS}/{pet.id}/guardians/{co_owner.id}", headers=auth(owner)).status_code == 204
        assert_problem(client.get(f"{PATIENTS}/{pet.id}", headers=auth(co_owner)), 404)
        assert_problem(client.delete(f"{PATIENTS}/{pet.id}/guardians/{owner.id}", headers=auth(owner)), 409,
                       "primary_guardian")


def test_huge_page_size_is_refused(client, gen_user, auth):
    assert_problem(client.get(f"{PATIENTS}?per_page=5000", headers=auth(gen_user())), 422)


def test_reading_patient_data_is_audited(client, gen_user, gen_patient, auth):
    from pawmanity.audit.models import AuditEvent

    owner = gen_user()
    pet = gen_patient(owner)
    client.get(f"{PATIENTS}/{pet.id}", headers=auth(owner))
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "patient.read"))
    assert (event.actor_id, event.object_id, event.object_type) == (owner.id, str(pet.id), "patient")
