"""What a request costs: a list the same number of SQL statements whatever its length (no query per row), a booking
a counted handful, an authenticated request one JWT decode.

The list operations are read from the served OpenAPI document (every GET whose 200 body is a `{"items": [...]}`
envelope or an array), so a new list endpoint fails `test_every_list_operation_is_counted` until it is given a scene
here (or, knowingly, a place in NOT_COUNTED). A list in SCENES is read with per_page=1 and per_page=20 over a shared
scene that holds at least 20 of its items; a list in SIZED_SCENES (those under one parent, and the unpaginated arrays
that per_page cannot shorten) over two scenes of its own, one with 1 item and one with 20. The statements the request
sends (SQLAlchemy's `before_cursor_execute`) must be the same number.
"""

import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import jwt
import pytest
from sqlalchemy import event

from pawmanity.audit import trail
from pawmanity.care.models import Guardianship, MedicalRecord, MedicalRecordVersion, Upload, WeightMeasurement
from pawmanity.conversations.models import Consultation, Message, VideoSession
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity.actor import Actor
from pawmanity.notifications.models import Notification, PushSubscription
from pawmanity.pharmacy.models import (
    Medicine,
    Pharmacy,
    PharmacyStaff,
    Prescription,
    Reservation,
    StockItem,
    StockLot,
    StockMovement,
)
from pawmanity.privacy.models import DataExport, Erasure
from pawmanity.scheduling.models import AppointmentEvent, TimeOff
from pawmanity.vitals.models import Alert, AlertRule, Device, Observation
from pawmanity.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from tests.support import iso, next_slot

N = 20
SPEC = "/api/v1/openapi.json"

# Lists whose cost does not grow with their length for a reason other than eager loading, or not yet given a scene
# (each named with why). Everything else the OpenAPI document lists must be in SCENES below.
NOT_COUNTED = {
    "ai_list_symptoms": "the knowledge base in memory: no SQL at all",
    "ai_list_conditions": "the knowledge base in memory: no SQL at all",
    "ai_list_diagnoses": "the document store (MongoDB), not SQL",
    "doctors_free_slots": "computed from availability rules: one doctor, its rules and its appointments",
    "vitals_query_series": "aggregated buckets computed by the database in one query",
    "doctors_get_my_profile": "one profile, not a list",
}

# operationId -> (who reads, path, query) over the scene; path and query are formatted with the scene's ids.
SCENES = {
    "patients_list_patients": ("owner", "/api/v1/patients", {}),
    "patients_list_weights": ("owner", "/api/v1/patients/{dog}/weights", {}),
    "patients_list_records": ("owner", "/api/v1/patients/{dog}/records", {}),
    "doctor_patients_my_patients": ("doctor", "/api/v1/doctors/me/patients", {}),
    "doctors_list_doctors": ("owner", "/api/v1/doctors", {}),
    "appointments_list_appointments": ("owner", "/api/v1/appointments", {}),
    "doctor_appointments_my_appointments": ("doctor", "/api/v1/doctors/me/appointments", {}),
    "consultations_list_consultations": ("owner", "/api/v1/consultations", {}),
    "consultations_list_messages": ("owner", "/api/v1/consultations/{consultation}/messages", {}),
    "notifications_list_notifications": ("owner", "/api/v1/notifications", {}),
    "uploads_list_uploads": ("owner", "/api/v1/uploads", {"patient_id": "{dog}"}),
    "prescriptions_list_prescriptions": ("owner", "/api/v1/prescriptions", {"patient_id": "{dog}"}),
    "vitals_query_readings": ("owner", "/api/v1/vitals", {"patient_id": "{dog}", "measurement": "heart_rate",
                                                         "from": "{day_ago}", "to": "{now}"}),
    "medicines_list_medicines": ("owner", "/api/v1/medicines", {}),
    "admin_list_users": ("admin", "/api/v1/admin/users", {}),
    "admin_list_audit": ("admin", "/api/v1/admin/audit", {}),
}


def list_operations(spec):
    """operationId of every GET whose 200 answer is a list: an `items` envelope or a JSON array."""
    schemas = spec["components"]["schemas"]
    found = set()
    for operations in spec["paths"].values():
        operation = operations.get("get")
        if operation is None:
            continue
        body = operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in body:
            body = schemas[body["$ref"].rsplit("/", 1)[-1]]
        if body.get("type") == "array" or "items" in body.get("properties", {}):
            found.add(operation["operationId"])
    return found


@contextmanager
def counted_statements():
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_every_list_operation_is_counted(client):
    operations = list_operations(client.get(SPEC).get_json())
    assert "appointments_list_appointments" in operations and "patients_list_patients" in operations
    counted = set(SCENES) | set(SIZED_SCENES)
    assert operations - counted - set(NOT_COUNTED) == set(), "a list operation without a scene"
    assert counted - operations == set(), "a scene for an operation the API no longer has"
    assert counted & set(NOT_COUNTED) == set(), "an operation both counted and not"


@pytest.fixture
def scene(app, gen_user, gen_doctor, gen_patient, gen_appointment, auth):
    """One owner with N dogs, each booked with one doctor and in a consultation; N of everything else on the first
    dog; N more doctors; an admin."""
    owner, admin = gen_user(role="patient"), gen_user(role="admin")
    doctor_user, doctor = gen_doctor()
    for _ in range(N):
        gen_doctor()
    dogs = [gen_patient(owner) for _ in range(N)]
    now = utcnow()
    consultations = []
    for number, dog in enumerate(dogs):
        appointment = gen_appointment(doctor, dog, next_slot(days=2 + number), status="confirmed")
        consultation = Consultation(appointment_id=appointment.id, doctor_id=doctor.id, patient_id=dog.id,
                                    started_by=doctor_user.id)
        db.session.add(consultation)
        consultations.append(consultation)
    db.session.flush()
    dog = dogs[0]
    for number in range(N):
        moment = now - timedelta(hours=number + 1)
        db.session.add_all([
            Message(consultation_id=consultations[0].id, seq=number + 1, sender_id=doctor_user.id,
                    client_id=f"c{number}", body=f"message {number}"),
            Notification(user_id=owner.id, kind="appointment.booked", title=f"note {number}"),
            WeightMeasurement(patient_id=dog.id, weight_kg=Decimal("10.5"), measured_at=moment),
            MedicalRecord(patient_id=dog.id, kind="note", title=f"record {number}", recorded_at=moment,
                          created_by=doctor_user.id),
            Upload(patient_id=dog.id, uploaded_by=owner.id, filename=f"f{number}.png", content_type="image/png",
                   size=10, sha256="0" * 64, storage_backend="local", storage_key=uuid.uuid4().hex),
            Prescription(patient_id=dog.id, consultation_id=consultations[0].id, medication=f"drug {number}",
                         prescribed_by=doctor_user.id),
            Observation(patient_id=dog.id, measurement="heart_rate", loinc="8867-4", unit="/min", value=80 + number,
                        taken_at=moment, source_kind="user", source_id=owner.id, sample_id=f"s{number}"),
            Medicine(name=f"Medicine {number}", strength="10 mg", form="tablet"),
        ])
        trail.record("patient.read", Actor(user_id=owner.id, role="patient"), object_type="patient",
                     object_id=dog.id)
    consultations[0].message_count = N
    db.session.commit()
    return {
        "headers": {"owner": auth(owner), "doctor": auth(doctor_user), "admin": auth(admin)},
        "ids": {"dog": dog.id, "consultation": consultations[0].id, "now": iso(now),
                "day_ago": iso(now - timedelta(days=1))},
    }


def statements_of(client, headers, path, query):
    with counted_statements() as statements:
        response = client.get(path, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    items = body["items"] if isinstance(body, dict) else body
    return len(items), statements


@pytest.mark.parametrize("operation", sorted(SCENES))
def test_a_list_costs_the_same_statements_at_1_and_at_20_items(client, scene, operation):
    who, path, query = SCENES[operation]
    ids = scene["ids"]
    path = path.format(**ids)
    query = {key: value.format(**ids) for key, value in query.items()}
    headers = scene["headers"][who]
    one, few = statements_of(client, headers, path, {**query, "per_page": 1})
    twenty, many = statements_of(client, headers, path, {**query, "per_page": N})
    assert (one, twenty) == (1, N), f"the scene should give 1 and {N} items, gave {one} and {twenty}"
    assert len(many) == len(few), (f"{operation}: {len(few)} statements for 1 item, {len(many)} for {N}:\n"
                                   + "\n".join(many))
    # A read of N objects is audited as one event (naming them: tests/test_audit.py), not one row per object.
    assert sum(statement.startswith("INSERT INTO audit_events") for statement in many) <= 1


# Lists over one parent (a patient, a record, a doctor, a pharmacy ...), several of them unpaginated arrays that no
# per_page can shorten: each is read over two scenes of its own, a fresh parent with 1 item and another with N.
# operationId -> build(make, n), which sets the scene and returns (headers, path, query).

def _guardians(make, n):
    owner = make.user()
    dog = make.patient(owner)
    for _ in range(n - 1):
        db.session.add(Guardianship(patient_id=dog.id, user_id=make.user().id, relation="family"))
    return make.auth(owner), f"/api/v1/patients/{dog.id}/guardians", {}


def _record_versions(make, n):
    owner = make.user()
    dog = make.patient(owner)
    record = MedicalRecord(patient_id=dog.id, kind="note", title="record", recorded_at=utcnow(), created_by=owner.id)
    db.session.add(record)
    db.session.flush()
    db.session.add_all(MedicalRecordVersion(record_id=record.id, version=number + 1, kind="note", title=f"v{number}",
                                            recorded_at=record.recorded_at, changed_by=owner.id)
                       for number in range(n))
    return make.auth(owner), f"/api/v1/patients/{dog.id}/records/{record.id}/versions", {}


def _time_off(make, n):
    user, doctor = make.doctor()
    start = utcnow() + timedelta(days=1)
    db.session.add_all(TimeOff(doctor_id=doctor.id, start_at=start + timedelta(days=number),
                               end_at=start + timedelta(days=number, hours=2), reason=f"away {number}")
                       for number in range(n))
    return make.auth(user), "/api/v1/doctors/me/time-off", {}


def _video_sessions(make, n):
    owner = make.user()
    dog = make.patient(owner)
    doctor_user, doctor = make.doctor()
    for number in range(n):
        appointment = make.appointment(doctor, dog, next_slot(days=2 + number), status="confirmed")
        db.session.add(VideoSession(appointment_id=appointment.id, room=uuid.uuid4().hex, created_by=doctor_user.id))
    return make.auth(owner), "/api/v1/video-sessions", {}


def _devices(make, n):
    owner = make.user()
    dog = make.patient(owner)
    db.session.add_all(Device(patient_id=dog.id, name=f"collar {number}", token_hash=uuid.uuid4().hex,
                              registered_by=owner.id) for number in range(n))
    return make.auth(owner), "/api/v1/vitals/devices", {"patient_id": str(dog.id)}


def _alert_rules(make, n):
    """The rules in force for a patient: its own overrides (no species rule in this database)."""
    owner = make.user()
    dog = make.patient(owner)
    db.session.add_all(AlertRule(patient_id=dog.id, measurement=f"measure_{number}", direction="above", threshold=10,
                                 clear_threshold=9) for number in range(n))
    return make.auth(owner), "/api/v1/vitals/alert-rules", {"patient_id": str(dog.id)}


def _alerts(make, n):
    owner = make.user()
    dog = make.patient(owner)
    rule = AlertRule(patient_id=dog.id, measurement="heart_rate", direction="above", threshold=180,
                     clear_threshold=160)
    db.session.add(rule)
    db.session.flush()
    now = utcnow()
    db.session.add_all(Alert(rule_id=rule.id, patient_id=dog.id, measurement="heart_rate", direction="above",
                             threshold=180, opened_at=now - timedelta(hours=number + 1), opening_value=190,
                             resolved_at=now - timedelta(hours=number)) for number in range(n))
    return make.auth(owner), "/api/v1/vitals/alerts", {"patient_id": str(dog.id)}


def _pharmacy(name="Pharmacy"):
    pharmacy = Pharmacy(name=f"{name} {uuid.uuid4().hex[:6]}", address="1 Main Street", latitude=48.85,
                        longitude=2.35)
    db.session.add(pharmacy)
    db.session.flush()
    return pharmacy


def _medicine():
    medicine = Medicine(name=f"Medicine {uuid.uuid4().hex[:6]}", strength="10 mg", form="tablet")
    db.session.add(medicine)
    db.session.flush()
    return medicine


def _pharmacist(make, pharmacy):
    user = make.user()
    db.session.add(PharmacyStaff(pharmacy_id=pharmacy.id, user_id=user.id))
    return user


def _search_pharmacies(make, n):
    """Pharmacies where a fresh medicine is available, each with its stock."""
    medicine = _medicine()
    for _ in range(n):
        db.session.add(StockItem(pharmacy_id=_pharmacy().id, medicine_id=medicine.id, on_hand=10))
    return make.auth(make.user()), "/api/v1/pharmacies", {"medicine": str(medicine.id)}


def _my_pharmacies(make, n):
    user = make.user()
    db.session.add_all(PharmacyStaff(pharmacy_id=_pharmacy().id, user_id=user.id) for _ in range(n))
    return make.auth(user), "/api/v1/pharmacies/mine", {}


def _staff(make, n):
    pharmacy = _pharmacy()
    staff = [_pharmacist(make, pharmacy) for _ in range(n)]
    return make.auth(staff[0]), f"/api/v1/pharmacies/{pharmacy.id}/staff", {}


def _stock(make, n):
    """N medicines in stock, each with a lot."""
    pharmacy = _pharmacy()
    user = _pharmacist(make, pharmacy)
    for number in range(n):
        item = StockItem(pharmacy_id=pharmacy.id, medicine_id=_medicine().id, on_hand=10)
        db.session.add(item)
        db.session.flush()
        db.session.add(StockLot(stock_item_id=item.id, lot_number=f"L{number}",
                                expires_on=(utcnow() + timedelta(days=90)).date(), remaining=10))
    return make.auth(user), f"/api/v1/pharmacies/{pharmacy.id}/stock", {}


def _movements(make, n):
    pharmacy = _pharmacy()
    user = _pharmacist(make, pharmacy)
    item = StockItem(pharmacy_id=pharmacy.id, medicine_id=_medicine().id, on_hand=n)
    db.session.add(item)
    db.session.flush()
    db.session.add_all(StockMovement(pharmacy_id=pharmacy.id, stock_item_id=item.id, kind="receive", on_hand_delta=1,
                                     idempotency_key=f"receive-{number}", actor_id=user.id) for number in range(n))
    return make.auth(user), f"/api/v1/pharmacies/{pharmacy.id}/stock/movements", {}


def _reservations(make, n):
    """N prescriptions of one patient, each reserved at the pharmacy."""
    pharmacy = _pharmacy()
    user = _pharmacist(make, pharmacy)
    owner = make.user()
    dog = make.patient(owner)
    medicine = _medicine()
    item = StockItem(pharmacy_id=pharmacy.id, medicine_id=medicine.id, on_hand=n, reserved=n)
    db.session.add(item)
    db.session.flush()
    for number in range(n):
        prescription = Prescription(patient_id=dog.id, medicine_id=medicine.id, medication=medicine.name)
        db.session.add(prescription)
        db.session.flush()
        db.session.add(Reservation(prescription_id=prescription.id, pharmacy_id=pharmacy.id, stock_item_id=item.id,
                                   quantity=1, expires_at=utcnow() + timedelta(days=2), created_by=owner.id))
    return make.auth(user), f"/api/v1/pharmacies/{pharmacy.id}/reservations", {}



def _endpoint():
    endpoint = WebhookEndpoint(url=f"https://hooks.example.com/{uuid.uuid4().hex}", events=["appointment.booked"],
                               secret=uuid.uuid4().hex)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def _webhook_endpoints(make, n):
    """Every endpoint: the 1 of the first scene and the N of the second make N + 1, read a page of N."""
    for _ in range(n):
        _endpoint()
    return make.auth(make.user(role="admin")), "/api/v1/admin/webhooks", {}


def _webhook_deliveries(make, n):
    """N deliveries of one endpoint, each of its own message and with a failed attempt in its log."""
    endpoint = _endpoint()
    for number in range(n):
        message = WebhookMessage(id=f"msg_{uuid.uuid4().hex}", event_type="appointment.booked",
                                 payload={"number": number})
        db.session.add(message)
        db.session.flush()
        delivery = WebhookDelivery(endpoint_id=endpoint.id, message_id=message.id, status="pending", attempts=1,
                                   last_status_code=500)
        db.session.add(delivery)
        db.session.flush()
        db.session.add(WebhookAttempt(delivery_id=delivery.id, status_code=500, duration_ms=12))
    return make.auth(make.user(role="admin")), f"/api/v1/admin/webhooks/{endpoint.id}/deliveries", {}


def _exports(make, n):
    owner = make.user()
    db.session.add_all(DataExport(owner_id=owner.id, subject_type="user", subject_id=owner.id) for _ in range(n))
    return make.auth(owner), "/api/v1/exports", {}


def _erasures(make, n):
    """The whole log: the 1 of the first scene and the N of the second make N + 1, read a page of N."""
    admin = make.user(role="admin")
    db.session.add_all(Erasure(subject_type="user", subject_id=uuid.uuid4(), requested_by=admin.id,
                               requested_by_role="admin", actions={"users": {"pseudonymised": 1}}) for _ in range(n))
    return make.auth(admin), "/api/v1/erasures", {}


def _push_subscriptions(make, n):
    user = make.user()
    db.session.add_all(PushSubscription(user_id=user.id, endpoint=f"https://push.example.com/{uuid.uuid4().hex}",
                                        p256dh="B" * 87, auth="A" * 22) for _ in range(n))
    return make.auth(user), "/api/v1/notifications/push/subscriptions", {}


SIZED_SCENES = {
    "patients_list_guardians": _guardians,
    "patients_list_record_versions": _record_versions,
    "doctors_list_time_off": _time_off,
    "video_sessions_list_sessions": _video_sessions,
    "vitals_list_devices": _devices,
    "vitals_list_rules": _alert_rules,
    "vitals_list_alerts": _alerts,
    "pharmacies_search_pharmacies": _search_pharmacies,
    "pharmacies_my_pharmacies": _my_pharmacies,
    "pharmacies_list_staff": _staff,
    "pharmacies_list_stock": _stock,
    "pharmacies_list_movements": _movements,
    "pharmacies_pharmacy_reservations": _reservations,
    "webhooks_list_endpoints": _webhook_endpoints,
    "webhooks_list_deliveries": _webhook_deliveries,
    "exports_list_exports": _exports,
    "erasures_list_erasures": _erasures,
    "notifications_list_push_subscriptions": _push_subscriptions,
}


@pytest.mark.parametrize("operation", sorted(SIZED_SCENES))
def test_a_list_costs_the_same_statements_with_1_and_with_20_items(client, gen_user, gen_doctor, gen_patient,
                                                                     gen_appointment, auth, operation):
    make = SimpleNamespace(user=gen_user, doctor=gen_doctor, patient=gen_patient, appointment=gen_appointment,
                           auth=auth)
    counted = []
    for n in (1, N):
        headers, path, query = SIZED_SCENES[operation](make, n)
        db.session.commit()
        db.session.expunge_all()  # nothing loaded beforehand, as in a server's request
        counted.append(statements_of(client, headers, path, query))
    (one, few), (twenty, many) = counted
    assert (one, twenty) == (1, N), f"the scenes should give 1 and {N} items, gave {one} and {twenty}"
    assert len(many) == len(few), (f"{operation}: {len(few)} statements for 1 item, {len(many)} for {N}:\n"
                                   + "\n".join(many))
    assert sum(statement.startswith("INSERT INTO audit_events") for statement in many) <= 1


# A booking, 23 statements before issue 15: the caller and its revocation (1); the patient, with whether the caller
# is its guardian (1); the doctor with its account, species and hours (3, now 1); the account lock and its quota
# (2); the doctor's calendar lock and time off (2); the appointment and its first history entry (2); the
# notifications (guardians, preferences, rows, e-mail addresses: 4, now 3, the addresses read with the preferences);
# the webhook endpoints (1); the audit chain (3), now its event alone (1: the chainer seals it after the commit).
BOOKING_STATEMENTS = 15  # +1 for the push channel (the recipients' browser subscriptions), -2 for the audit chain


def test_a_booking_costs_a_handful_of_statements(client, gen_user, gen_doctor, gen_patient, auth):
    owner = gen_user(role="patient")
    dog = gen_patient(owner)
    _, doctor = gen_doctor()
    headers = auth(owner)
    db.session.expunge_all()  # nothing loaded beforehand, as in a server's request
    with counted_statements() as statements:
        response = client.post("/api/v1/appointments", headers=headers, json={
            "doctor_id": str(doctor.id), "patient_id": str(dog.id), "start": iso(next_slot()), "type": "video"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert len(statements) <= BOOKING_STATEMENTS, "\n".join(statements)


def test_a_slot_search_costs_three_statements(client, gen_user, gen_doctor, auth):
    headers = auth(gen_user(role="patient"))
    _, doctor = gen_doctor()
    db.session.expunge_all()  # nothing loaded beforehand, as in a server's request
    start = next_slot()
    with counted_statements() as statements:
        response = client.get(f"/api/v1/doctors/{doctor.id}/slots", headers=headers,
                              query_string={"from": iso(start), "to": iso(start + timedelta(days=2))})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json(), "the scene's doctor has free slots"
    # The caller and its revocation; the doctor with its account, rules and species; its appointments and time off.
    assert len(statements) == 3, "\n".join(statements)


def test_an_authenticated_request_decodes_its_token_once(client, gen_user, auth, monkeypatch):
    headers = auth(gen_user(role="patient"))
    decodes = []
    original = jwt.api_jws.PyJWS.decode_complete

    def counted(self, *args, **kwargs):
        decodes.append(kwargs.get("options"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jwt.api_jws.PyJWS, "decode_complete", counted)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert len(decodes) == 1
    # ... and the one decode checks the signature: a token signed with another key is refused.
    forged = jwt.encode({**jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})},
                        "another-key-of-at-least-thirty-two-bytes", algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_the_appointment_list_reads_its_histories_with_its_page(client, gen_user, gen_doctor, gen_patient,
                                                                 gen_appointment, auth):
    owner = gen_user(role="patient")
    dog = gen_patient(owner)
    _, doctor = gen_doctor()
    for day in range(3):
        appointment = gen_appointment(doctor, dog, next_slot(days=2 + day))
        for action in ("book", "confirm"):
            appointment.events.append(AppointmentEvent(action=action, actor_id=owner.id))
    headers = auth(owner)
    db.session.commit()
    db.session.expunge_all()  # nothing loaded beforehand, as in a server's request
    with counted_statements() as statements:
        response = client.get("/api/v1/appointments", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [[event["action"] for event in item["history"]] for item in response.get_json()["items"]] == \
        [["book", "confirm"]] * 3
    # One statement reads the page, its total and every history on it; none reads the histories apart.
    reads = [statement for statement in statements if "appointment_events" in statement]
    assert len(reads) == 1 and "count(*) OVER ()" in reads[0], "\n".join(statements)


# A chat message, 10 statements before it was counted: the caller and its revocation (1); the consultation, its
# doctor's account and its guardians (3, now 1); the client_id looked up before storing (1, now only after a
# refusal); the consultation locked and re-read (1), its count raised and the message inserted (2), now the count
# taken by one UPDATE ... RETURNING (1) and the message (1); the sender's read mark (1 or 2, now an upsert: 1).
MESSAGE_STATEMENTS = 5


def test_a_chat_message_costs_a_handful_of_statements(client, gen_user, gen_doctor, gen_patient, gen_appointment,
                                                      auth):
    owner = gen_user(role="patient")
    dog = gen_patient(owner)
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, dog, next_slot(days=2), status="confirmed")
    consultation = Consultation(appointment_id=appointment.id, doctor_id=doctor.id, patient_id=dog.id,
                                started_by=doctor_user.id)
    db.session.add(consultation)
    db.session.commit()
    headers = auth(owner)
    for number in (1, 2):  # the first creates the sender's read mark, the second moves it
        db.session.expunge_all()  # nothing loaded beforehand, as in a server's request
        with counted_statements() as statements:
            response = client.post(f"/api/v1/consultations/{consultation.id}/messages", headers=headers,
                                   json={"body": f"message {number}", "client_id": f"c-{number}"})
        assert response.status_code == 201, response.get_data(as_text=True)
        assert response.get_json()["seq"] == number
        assert len(statements) <= MESSAGE_STATEMENTS, "\n".join(statements)
