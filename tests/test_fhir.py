"""The FHIR API: every resource served validates against fhir.resources' R4B models (the library's reading of the
standard, not ours), searches behave as FHIR says, errors are OperationOutcomes, and the CapabilityStatement lists
exactly the routes that exist."""

import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from pawmanity.audit.models import AuditEvent
from pawmanity.care.models import WeightMeasurement
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.fhir.resources import ANIMAL_EXTENSION
from tests.support import bearer, next_slot

FHIR = "/fhir"
FHIR_JSON = "application/fhir+json"


def validated(resource):
    """Parse with the library's model for the resource's type; a Bundle validates every entry as well."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    return resource


def get(client, path, token=None, **params):
    headers = bearer(token) if token else {}
    response = client.get(f"{FHIR}{path}", headers=headers, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    return validated(response.get_json())


def outcome(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = validated(response.get_json())
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return body


def ids(bundle):
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


@pytest.fixture
def clinic(client, gen_user, gen_patient, gen_doctor, gen_appointment, tokens_for):
    """An owner with a neutered beagle and a person; a doctor with a consultation, chat and an upload."""
    owner = gen_user(full_name="Sam Lee")
    admin = gen_user(role="admin")
    doctor_user, doctor = gen_doctor(full_name="Dr. Elena Rivera")
    other_doctor_user, other_doctor = gen_doctor(full_name="Dr. Nobody")
    dog = gen_patient(owner, name="Biscuit", species="dog", sex="male_neutered", breed="Beagle",
                      microchip_id="985112003456789")
    person = gen_patient(owner, name="Lea Becker", species="human", sex="female")
    db.session.add_all([WeightMeasurement(patient_id=dog.id, weight_kg=Decimal("12.4"),
                                          measured_at=utcnow() - timedelta(days=days)) for days in (30, 1)])
    db.session.commit()
    now = utcnow()
    current = gen_appointment(doctor, dog, now - timedelta(minutes=5), status="confirmed")
    later = gen_appointment(doctor, dog, next_slot(days=3), status="requested")
    human_visit = gen_appointment(other_doctor, person, next_slot(days=4), status="cancelled")
    tokens = {name: tokens_for(user)["access_token"]
              for name, user in (("owner", owner), ("admin", admin), ("doctor", doctor_user),
                                 ("other_doctor", other_doctor_user))}
    started = client.post("/api/v1/consultations", json={"appointment_id": str(current.id)},
                          headers=bearer(tokens["doctor"]))
    assert started.status_code == 201, started.get_data(as_text=True)
    consultation_id = started.get_json()["id"]
    for index, body in enumerate(("Hello, Biscuit is scratching", "Since when?")):
        token = tokens["owner"] if index == 0 else tokens["doctor"]
        sent = client.post(f"/api/v1/consultations/{consultation_id}/messages",
                           json={"body": body, "client_id": f"m-{index}"}, headers=bearer(token))
        assert sent.status_code == 201
    from tests.test_uploads import png

    uploaded = client.post("/api/v1/uploads", headers=bearer(tokens["owner"]), content_type="multipart/form-data",
                           data={"patient_id": str(dog.id), "consultation_id": consultation_id,
                                 "file": (io.BytesIO(png()), "ear.png")})
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    return {"tokens": tokens, "dog": dog, "person": person, "doctor": doctor, "other_doctor": other_doctor,
            "current": current, "later": later, "human_visit": human_visit, "consultation_id": consultation_id,
            "upload_id": uploaded.get_json()["id"]}


class TestCapabilityStatement:
    def test_metadata_is_a_valid_capability_statement_served_without_a_token(self, client):
        statement = get(client, "/metadata")
        assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.3.0"
        assert statement["format"] == ["application/fhir+json", "json"]

    def test_it_lists_exactly_the_routes_that_exist(self, app, client):
        statement = get(client, "/metadata")
        declared = {(resource["type"], interaction["code"])
                    for resource in statement["rest"][0]["resource"] for interaction in resource["interaction"]}
        declared |= {(resource["type"], f"${operation['name']}")
                     for resource in statement["rest"][0]["resource"] for operation in resource.get("operation", ())}
        routed = set()
        for rule in app.url_map.iter_rules():
            parts = rule.rule.split("/")
            if parts[1] != "fhir" or len(parts) < 3 or "<path:" in rule.rule or parts[2] in ("", "metadata"):
                continue
            if len(parts) == 3:
                routed.add((parts[2], "search-type"))
            elif len(parts) == 4:
                routed.add((parts[2], "read"))
            else:
                routed.add((parts[2], parts[4]))
        assert routed == declared

    def test_every_declared_search_parameter_is_understood_and_nothing_else(self, client, clinic):
        statement = get(client, "/metadata")
        samples = {"token": None, "reference": str(clinic["dog"].id), "date": "ge2020-01-01", "string": "a"}
        tokens = {"status": {"Appointment": "booked", "Encounter": "finished", "Slot": "free"},
                  "_id": {"AuditEvent": "1", "Observation": "weight-1"}, "subtype": {"AuditEvent": "patient.read"},
                  "code": {"Observation": "http://loinc.org|29463-7"}, "category": {"Observation": "vital-signs"}}
        for resource in statement["rest"][0]["resource"]:
            for parameter in resource["searchParam"]:
                value = tokens.get(parameter["name"], {}).get(resource["type"]) or samples[parameter["type"]] \
                    or str(clinic["dog"].id)
                bundle = get(client, f"/{resource['type']}", clinic["tokens"]["admin"],
                             **{parameter["name"]: value})
                assert bundle["type"] == "searchset"
            outcome(client.get(f"{FHIR}/{resource['type']}?unknown=1", headers=bearer(clinic["tokens"]["admin"])),
                    400)


def test_the_openapi_document_points_to_the_fhir_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    tag = next(tag for tag in spec["tags"] if tag["name"] == "FHIR")
    assert "/fhir/metadata" in tag["description"]


class TestPatient:
    def test_an_animal_carries_species_breed_and_neuter_status(self, client, clinic):
        patient = get(client, f"/Patient/{clinic['dog'].id}", clinic["tokens"]["owner"])
        assert patient["gender"] == "male" and patient["name"] == [{"text": "Biscuit"}]
        animal = next(extension for extension in patient["extension"] if extension["url"] == ANIMAL_EXTENSION)
        parts = {part["url"]: part["valueCodeableConcept"] for part in animal["extension"]}
        assert parts["species"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "448771007",
                                                 "display": "Canis lupus familiaris"}
        assert parts["breed"]["text"] == "Beagle"
        assert parts["genderStatus"]["coding"][0]["code"] == "neutered"

    def test_a_person_has_no_animal_extension(self, client, clinic):
        patient = get(client, f"/Patient/{clinic['person'].id}", clinic["tokens"]["owner"])
        assert "extension" not in patient and patient["gender"] == "female"

    def test_the_access_policy_is_the_rest_apis(self, client, clinic, gen_user, tokens_for):
        stranger = tokens_for(gen_user())["access_token"]
        outcome(client.get(f"{FHIR}/Patient/{clinic['dog'].id}", headers=bearer(stranger)), 404)
        assert get(client, "/Patient", stranger)["total"] == 0
        # A doctor sees a patient only through an appointment with them.
        assert ids(get(client, "/Patient", clinic["tokens"]["doctor"])) == [str(clinic["dog"].id)]
        outcome(client.get(f"{FHIR}/Patient/{clinic['person'].id}", headers=bearer(clinic["tokens"]["doctor"])),
                404)
        assert get(client, "/Patient", clinic["tokens"]["owner"])["total"] == 2  # the dog and the person

    def test_reads_and_searches_are_audited(self, client, clinic):
        get(client, f"/Patient/{clinic['dog'].id}", clinic["tokens"]["doctor"])
        get(client, "/Patient", clinic["tokens"]["doctor"], _id=str(clinic["dog"].id))
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "patient")
                                  .order_by(AuditEvent.id)).all()
        assert [(row.action, row.detail["api"]) for row in rows[-2:]] == [("patient.read", "fhir"),
                                                                          ("patient.list", "fhir")]
        assert rows[-1].detail["ids"] == [str(clinic["dog"].id)]

    def test_name_search_and_sort(self, client, clinic):
        bundle = get(client, "/Patient", clinic["tokens"]["owner"], name="bisc")
        assert ids(bundle) == [str(clinic["dog"].id)]
        names = [entry["resource"]["name"][0]["text"]
                 for entry in get(client, "/Patient", clinic["tokens"]["owner"], _sort="-name")["entry"]]
        assert names == sorted(names, reverse=True)

    def test_everything_returns_the_compartment(self, client, clinic):
        bundle = get(client, f"/Patient/{clinic['dog'].id}/$everything", clinic["tokens"]["owner"])
        kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
        assert kinds[0] == "Patient"
        assert kinds.count("Appointment") == 2 and kinds.count("Encounter") == 1
        assert kinds.count("Communication") == 2 and kinds.count("DocumentReference") == 1
        assert kinds.count("Observation") == 2
        assert str(clinic["person"].id) not in str(bundle)
        stranger_view = client.get(f"{FHIR}/Patient/{clinic['person'].id}/$everything",
                                   headers=bearer(clinic["tokens"]["doctor"]))
        outcome(stranger_view, 404)


class TestSearch:
    def test_appointments_by_patient_practitioner_date_and_status(self, client, clinic):
        token = clinic["tokens"]["admin"]
        dog = f"Patient/{clinic['dog'].id}"
        assert set(ids(get(client, "/Appointment", token, patient=dog))) == {
            str(clinic["current"].id), str(clinic["later"].id)}
        assert ids(get(client, "/Appointment", token, practitioner=str(clinic["other_doctor"].id))) == [
            str(clinic["human_visit"].id)]
        day = (clinic["later"].start_at).date().isoformat()
        assert ids(get(client, "/Appointment", token, date=f"ge{day}", patient=dog)) == [str(clinic["later"].id)]
        assert ids(get(client, "/Appointment", token, date=f"lt{day}", patient=dog)) == [str(clinic["current"].id)]
        assert ids(get(client, "/Appointment", token, status="cancelled")) == [str(clinic["human_visit"].id)]
        assert ids(get(client, "/Appointment", token, status="arrived")) == [str(clinic["current"].id)]

    def test_count_and_paging_links(self, client, clinic):
        token = clinic["tokens"]["admin"]
        first = get(client, "/Appointment", token, _count="2", _sort="date")
        assert first["total"] == 3 and len(first["entry"]) == 2
        links = {link["relation"]: link["url"] for link in first["link"]}
        assert "previous" not in links
        following = urlsplit(links["next"])
        second = validated(client.get(f"{following.path}?{following.query}", headers=bearer(token)).get_json())
        assert len(second["entry"]) == 1 and "next" not in {link["relation"] for link in second["link"]}
        assert set(ids(first)) | set(ids(second)) == {str(clinic[key].id) for key in ("current", "later",
                                                                                      "human_visit")}

    def test_the_guardian_sees_their_appointments_only(self, client, clinic, gen_user, tokens_for):
        stranger = tokens_for(gen_user())["access_token"]
        assert get(client, "/Appointment", stranger)["total"] == 0
        outcome(client.get(f"{FHIR}/Appointment/{clinic['later'].id}", headers=bearer(stranger)), 404)
        # The other doctor sees their own appointment, not Dr. Rivera's.
        assert ids(get(client, "/Appointment", clinic["tokens"]["other_doctor"])) == [
            str(clinic["human_visit"].id)]

    def test_encounter_communication_and_document(self, client, clinic):
        token = clinic["tokens"]["owner"]
        encounter = get(client, f"/Encounter/{clinic['consultation_id']}", token)
        assert encounter["status"] == "in-progress"
        assert encounter["subject"]["reference"] == f"Patient/{clinic['dog'].id}"
        assert ids(get(client, "/Encounter", token, status="finished")) == []
        messages = get(client, "/Communication", token, encounter=f"Encounter/{clinic['consultation_id']}")
        assert [entry["resource"]["payload"][0]["contentString"] for entry in messages["entry"]] == [
            "Hello, Biscuit is scratching", "Since when?"]
        assert messages["entry"][1]["resource"]["sender"]["reference"] == f"Practitioner/{clinic['doctor'].id}"
        document = get(client, f"/DocumentReference/{clinic['upload_id']}", token)
        assert document["content"][0]["attachment"]["url"].endswith(f"/api/v1/uploads/{clinic['upload_id']}/content")
        assert document["context"]["encounter"][0]["reference"] == f"Encounter/{clinic['consultation_id']}"

    def test_practitioner_schedule_and_free_slots(self, client, clinic):
        token = clinic["tokens"]["owner"]
        doctor = clinic["doctor"]
        practitioner = get(client, f"/Practitioner/{doctor.id}", token)
        assert practitioner["name"][0]["text"] == "Dr. Elena Rivera"
        schedule = get(client, "/Schedule", token, actor=f"Practitioner/{doctor.id}")
        assert ids(schedule) == [str(doctor.id)]
        day = clinic["later"].start_at.date()
        slots = get(client, "/Slot", token, schedule=f"Schedule/{doctor.id}",
                    start=[f"ge{day}", f"lt{day + timedelta(days=1)}"], _count="100")
        starts = [entry["resource"]["start"] for entry in slots["entry"]]
        assert len(starts) == 19  # 08:00-18:00 in 30 minutes, less the booked 10:00
        assert clinic["later"].start_at.isoformat().replace("+00:00", "Z") not in starts
        one = slots["entry"][0]["resource"]
        assert get(client, f"/Slot/{one['id']}", token)["start"] == one["start"]
        outcome(client.get(f"{FHIR}/Slot", headers=bearer(token), query_string={
            "start": ["ge2030-01-01", "lt2030-03-01"]}), 400)

    def test_weights_are_body_weight_observations(self, client, clinic):
        token = clinic["tokens"]["doctor"]
        bundle = get(client, "/Observation", token, patient=f"Patient/{clinic['dog'].id}", code="29463-7",
                     date=f"ge{(utcnow() - timedelta(days=7)).date()}")
        assert bundle["total"] == 1
        observation = bundle["entry"][0]["resource"]
        assert observation["code"]["coding"][0] == {"system": "http://loinc.org", "code": "29463-7",
                                                    "display": "Body weight"}
        assert observation["valueQuantity"] == {"value": 12.4, "unit": "kg", "system": "http://unitsofmeasure.org",
                                                "code": "kg"}
        assert observation["category"][0]["coding"][0]["code"] == "vital-signs"
        assert get(client, f"/Observation/{observation['id']}", token)["id"] == observation["id"]
        assert get(client, "/Observation", token, code="8867-4")["total"] == 0  # heart rate: none recorded
        outcome(client.get(f"{FHIR}/Observation/{observation['id']}",
                           headers=bearer(clinic["tokens"]["other_doctor"])), 404)

    def test_audit_events_for_admins_only(self, client, clinic):
        bundle = get(client, "/AuditEvent", clinic["tokens"]["admin"], subtype="consultation.start")
        assert bundle["total"] == 1
        event = get(client, f"/AuditEvent/{bundle['entry'][0]['resource']['id']}", clinic["tokens"]["admin"])
        assert event["subtype"][0]["code"] == "consultation.start"
        outcome(client.get(f"{FHIR}/AuditEvent", headers=bearer(clinic["tokens"]["owner"])), 403)


class TestErrors:
    @pytest.mark.parametrize("query", ["foo=1", "patient:missing=true", "date=sa2020-01-01", "date=tomorrow",
                                       "_count=0", "_count=1000", "_sort=reason", "status=maybe",
                                       "patient=Practitioner/00000000-0000-4000-8000-000000000000",
                                       "patient=not-an-id"])
    def test_bad_searches_are_operation_outcomes(self, client, clinic, query):
        body = outcome(client.get(f"{FHIR}/Appointment?{query}", headers=bearer(clinic["tokens"]["admin"])), 400)
        assert body["issue"][0]["diagnostics"]

    def test_json_only(self, client, clinic):
        outcome(client.get(f"{FHIR}/Patient?_format=xml", headers=bearer(clinic["tokens"]["admin"])), 406)

    def test_no_token_bad_token(self, client, clinic):
        response = client.get(f"{FHIR}/Patient")
        assert outcome(response, 401)["issue"][0]["code"] == "login"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        outcome(client.get(f"{FHIR}/Patient", headers=bearer("not.a.token")), 401)

    def test_unknown_types_writes_and_ids(self, client, clinic):
        token = bearer(clinic["tokens"]["admin"])
        outcome(client.get(f"{FHIR}/MedicationRequest", headers=token), 404)
        outcome(client.post(f"{FHIR}/Patient", headers=token, json={"resourceType": "Patient"}), 405)
        outcome(client.get(f"{FHIR}/Patient/nope", headers=token), 404)
        outcome(client.get(f"{FHIR}/AuditEvent/99999999", headers=token), 404)
        outcome(client.get(f"{FHIR}/Slot/garbage", headers=token), 404)


def test_the_demo_data_validates_for_every_resource_type(app, client, gen_user, tokens_for):
    from pawmanity.demo import DEMO_PASSWORD

    app.test_cli_runner().invoke(args=["demo", "load"])
    owner = client.post("/api/v1/auth/login", json={"email": "sam.owner@example.com",
                                                    "password": DEMO_PASSWORD}).get_json()["access_token"]
    pets = client.get("/api/v1/patients", headers=bearer(owner)).get_json()["items"]
    booked = client.post("/api/v1/appointments/earliest", headers=bearer(owner), json={
        "specialty": "dermatology", "patient_id": next(p["id"] for p in pets if p["name"] == "Biscuit"),
        "type": "video"})
    assert booked.status_code == 201
    admin = tokens_for(gen_user(role="admin"))["access_token"]
    statement = get(client, "/metadata")
    seen = set()
    for resource in statement["rest"][0]["resource"]:
        bundle = get(client, f"/{resource['type']}", admin, _count="100")
        for entry in bundle.get("entry", []):
            kind = entry["resource"]["resourceType"]
            seen.add(kind)
            validated(get(client, f"/{kind}/{entry['resource']['id']}", admin))
    assert {"Patient", "Practitioner", "Schedule", "Slot", "Appointment", "AuditEvent", "Observation"} <= seen
