"""Inputs at the edges: NUL characters, years 1 and 9999, enormous numbers, a gram of weight. Never a 500."""

from datetime import timedelta

import pytest

from pawmanity.core.database import utcnow
from tests.support import PASSWORD, assert_problem, bearer, iso, next_slot


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/register", {"email": "n@example.com", "password": PASSWORD, "full_name": "Nul\u0000l",
                               "role": "patient"}),
    ("/api/v1/patients", {"name": "Bis\u0000cuit", "species": "dog"}),
])
def test_nul_characters_are_refused(client, auth, gen_user, path, body):
    assert_problem(client.post(path, json=body, headers=auth(gen_user())), 422)


def test_nul_in_a_query_parameter(client):
    assert_problem(client.get("/api/v1/doctors?specialty=derm%00"), 422)


@pytest.mark.parametrize("moment", ["9999-12-31T23:30:00-05:00", "0001-01-01T00:30:00+05:00",
                                    "2250-01-01T00:00:00Z", "1850-01-01T00:00:00Z"])
def test_far_away_times_are_422(client, auth, gen_user, gen_patient, moment):
    owner = gen_user()
    pet = gen_patient(owner)
    response = client.post(f"/api/v1/patients/{pet.id}/records", headers=auth(owner), json={
        "kind": "note", "title": "x", "recorded_at": moment})
    assert "recorded_at" in assert_problem(response, 422)["errors"]
    assert_problem(client.get(f"/api/v1/appointments?from={moment.replace('+', '%2B')}", headers=auth(owner)), 422)


def test_slots_far_away_are_422(client, gen_doctor):
    _, doctor = gen_doctor()
    assert_problem(client.get(f"/api/v1/doctors/{doctor.id}/slots?from=9999-12-31T00:00:00Z"), 422)


def test_an_enormous_integer_is_malformed_json(client, auth, gen_user, gen_patient):
    owner = gen_user()
    pet = gen_patient(owner)
    body = '{"weight_kg": ' + "9" * 5000 + ', "measured_at": "2026-01-01T00:00:00Z"}'
    response = client.post(f"/api/v1/patients/{pet.id}/weights", data=body, content_type="application/json",
                           headers=auth(owner))
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("kilos", [0.0001, 0.0004])
def test_less_than_a_gram_is_refused(client, auth, gen_user, gen_patient, kilos):
    owner = gen_user()
    pet = gen_patient(owner)
    response = client.post(f"/api/v1/patients/{pet.id}/weights", headers=auth(owner), json={
        "weight_kg": kilos, "measured_at": iso(utcnow())})
    assert "weight_kg" in assert_problem(response, 422)["errors"]


def test_a_weight_from_the_future_is_refused(client, auth, gen_user, gen_patient):
    owner = gen_user()
    pet = gen_patient(owner)
    response = client.post(f"/api/v1/patients/{pet.id}/weights", headers=auth(owner), json={
        "weight_kg": 9, "measured_at": iso(utcnow() + timedelta(days=3))})
    # Relative to now, which the document cannot state: a refusal of its own, which it lists.
    assert "measured_at" in assert_problem(response, 422, "measured_in_future")["errors"]


def test_a_birth_in_the_future_is_refused(client, auth, gen_user):
    born = (utcnow() + timedelta(days=3)).date().isoformat()
    response = client.post("/api/v1/patients", headers=auth(gen_user()), json={
        "name": "Biscuit", "species": "dog", "sex": "male", "date_of_birth": born})
    assert "date_of_birth" in assert_problem(response, 422, "born_in_future")["errors"]


def test_nul_in_a_socket_message_is_an_error_ack(app, client, gen_user, gen_patient, gen_doctor, gen_appointment,
                                                tokens_for):
    from pawmanity.core.extensions import socketio

    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=1), status="confirmed")
    consultation = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                               headers=bearer(tokens_for(doctor_user)["access_token"])).get_json()
    socket = socketio.test_client(app, namespace="/chat", auth={"token": tokens_for(owner)["access_token"]})
    ack = socket.emit("message", {"consultation_id": consultation["id"], "body": "a\u0000b", "client_id": "n1"},
                      namespace="/chat", callback=True)
    assert ack["error"]["status"] == 422


def test_specialty_is_matched_whatever_its_case(client, gen_user, auth):
    admin, doctor = gen_user(role="admin"), gen_user(role="doctor")
    profile = client.put("/api/v1/doctors/me", headers=auth(doctor), json={
        "specialty": "Dermatology", "species_treated": ["dog"], "license_number": "L-1", "timezone": "UTC"}).get_json()
    client.post(f"/api/v1/admin/doctors/{profile['id']}/verify", headers=auth(admin))
    for query in ("Dermatology", "dermatology", "DERMATOLOGY"):
        assert client.get(f"/api/v1/doctors?specialty={query}").get_json()["total"] == 1


def test_completing_the_appointment_first_still_lets_the_doctor_end(client, gen_user, gen_patient, gen_doctor,
                                                                     gen_appointment, auth):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=1), status="confirmed")
    consultation = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                               headers=auth(doctor_user)).get_json()
    client.post(f"/api/v1/appointments/{appointment.id}/complete", headers=auth(doctor_user))
    ended = client.post(f"/api/v1/consultations/{consultation['id']}/end", json={"summary": "Fine."},
                        headers=auth(doctor_user))
    assert ended.status_code == 200 and ended.get_json()["active"] is False


def test_the_calendar_keeps_upcoming_appointments_behind_many_old_ones(client, gen_user, gen_patient, gen_doctor,
                                                                        gen_appointment, auth):
    from icalendar import Calendar

    owner = gen_user()
    _, doctor = gen_doctor()
    pet = gen_patient(owner)
    for day in range(40, 60):
        gen_appointment(doctor, pet, next_slot(days=-day), status="completed")
    upcoming = gen_appointment(doctor, pet, next_slot(days=3), status="confirmed")
    feed = Calendar.from_ical(client.get("/api/v1/appointments/calendar.ics", headers=auth(owner)).data)
    assert [str(e["UID"]) for e in feed.walk("VEVENT")] == [f"{upcoming.id}@pawmanity"]


DEEP = "[" * 600 + "]" * 600
VERY_DEEP = "[" * 100_000 + "]" * 100_000  # deeper than the json module itself can recurse


@pytest.mark.parametrize("body", [DEEP, '{"email": %s, "password": "x"}' % DEEP, VERY_DEEP,
                                  '{"email": "a@b.example", "password": ' + "[" * 33 + "]" * 33 + "}"],
                         ids=["600-arrays", "600-in-a-field", "100000-arrays", "33-levels"])
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register"])
def test_deeply_nested_json_is_422_even_before_sign_in(client, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert "32 levels" in assert_problem(response, 422, "json_too_deep")["detail"]


def test_deeply_nested_json_is_422_behind_sign_in(client, auth, gen_user):
    owner = gen_user()
    response = client.post("/api/v1/patients", data='{"name": "Rex", "species": "dog", "x": %s}' % DEEP,
                           content_type="application/json", headers=auth(owner))
    assert_problem(response, 422, "json_too_deep")


def test_nesting_up_to_the_limit_is_only_judged_by_the_schema(client):
    body = '{"email": "a@b.example", "password": ' + "[" * 31 + "]" * 31 + "}"
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert "password" in assert_problem(response, 422, "validation_failed")["errors"]


@pytest.mark.parametrize("body", [
    '{"email": "a@b.example", "password": "\\ud800"}',
    '{"email": "a\\udfff@b.example", "password": "x"}',
    '{"email": "n@example.com", "password": "a sound passphrase", "full_name": "Ann\\ud83d", "role": "patient"}',
], ids=["password", "email", "full_name"])
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register"])
def test_unpaired_surrogates_are_422(client, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert_problem(response, 422)


def test_a_paired_surrogate_is_just_an_emoji(client):
    body = '{"email": "e@example.com", "password": "a sound passphrase", "full_name": "Ann \\ud83d\\ude00", ' \
           '"role": "patient"}'
    response = client.post("/api/v1/auth/register", data=body, content_type="application/json")
    assert response.status_code == 201 and response.get_json()["full_name"] == "Ann \U0001F600"


@pytest.fixture
def chat_socket(app, client, gen_user, gen_patient, gen_doctor, gen_appointment, tokens_for):
    from pawmanity.core.extensions import socketio

    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=1), status="confirmed")
    consultation = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                               headers=bearer(tokens_for(doctor_user)["access_token"])).get_json()
    socket = socketio.test_client(app, namespace="/chat", auth={"token": tokens_for(owner)["access_token"]})
    return socket, consultation


def emit_raw(socket, event, payload_json, namespace="/chat"):
    """Send an event as a browser would put it on the wire: the test client's own encoder recurses over the data
    and cannot build a packet of 600 levels, which a real client can send and the server decodes."""
    socket.callback_counter += 1
    socket.socketio.server._handle_eio_message(
        socket.eio_sid, f'2{namespace},{socket.callback_counter}["{event}",{payload_json}]')
    ack, socket.acks = socket.acks, None
    return ack["args"][0]


@pytest.mark.parametrize("event", ["message", "typing", "read", "join"])
def test_deeply_nested_socket_events_get_an_error_ack(chat_socket, event):
    socket, consultation = chat_socket
    for payload in ('{"consultation_id": "%s", "body": %s, "client_id": "d1"}' % (consultation["id"], DEEP), DEEP):
        ack = emit_raw(socket, event, payload)
        assert ack["error"]["status"] == 422 and ack["error"]["code"] == "json_too_deep"


def test_an_unpaired_surrogate_in_a_socket_message_is_an_error_ack(chat_socket):
    socket, consultation = chat_socket
    ack = socket.emit("message", {"consultation_id": consultation["id"], "body": "a\ud800b", "client_id": "s1"},
                      namespace="/chat", callback=True)
    assert ack["error"]["status"] == 422
