"""Outbound webhooks: Standard Webhooks signatures checked by the standardwebhooks library itself, thin payloads,
retries from the durable outbox until each event arrives exactly once, disabling, the delivery log and replay, and
the SSRF rules (a hostname resolving to a metadata or loopback address is refused)."""

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.webhooks import delivery, transport
from pawmanity.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from tests.support import assert_problem, iso, next_slot

WEBHOOKS = "/api/v1/admin/webhooks"
LOOPBACK_ALLOWED = {"WEBHOOK_ALLOWED_NETWORKS": ("127.0.0.0/8",)}


class Receiver:
    """A local HTTP receiver: records every request; answers from a script of statuses, then 204."""

    def __init__(self):
        self.requests, self.script = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 204
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def accepted_ids(self):
        return [request["headers"]["webhook-id"] for request in self.requests if 200 <= request["status"] < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def hooks_app(app):
    # The test's own app (the one Celery's eager tasks run in), with the local receiver's network allowed.
    app.config.update(LOOPBACK_ALLOWED)
    return app


@pytest.fixture
def scene(hooks_app, gen_user, gen_patient, gen_doctor, auth):
    client = hooks_app.test_client()
    admin, owner = gen_user(role="admin"), gen_user()
    doctor_user, doctor = gen_doctor(species=("dog",))
    return {"client": client, "admin": auth(admin), "owner": auth(owner), "doctor_user": auth(doctor_user),
            "doctor": doctor, "pet": gen_patient(owner, species="dog", name="Biscuit")}


def register(scene, url, events=("appointment.booked", "appointment.confirmed", "appointment.cancelled")):
    response = scene["client"].post(WEBHOOKS, json={"url": url, "events": list(events)}, headers=scene["admin"])
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def book(scene, days=2, hour=10):
    response = scene["client"].post("/api/v1/appointments", headers=scene["owner"], json={
        "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "start": iso(next_slot(days, hour)),
        "type": "video", "reason": "Itchy ears and a rash"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


class TestRegistration:
    def test_the_secret_is_shown_once_and_admins_only(self, scene, receiver):
        created = register(scene, receiver.url)
        assert created["secret"].startswith("whsec_") and created["active"] is True
        shown = scene["client"].get(f"{WEBHOOKS}/{created['id']}", headers=scene["admin"]).get_json()
        assert "secret" not in shown
        listed = scene["client"].get(WEBHOOKS, headers=scene["admin"]).get_json()
        assert listed["total"] == 1 and "secret" not in listed["items"][0]
        assert_problem(scene["client"].get(WEBHOOKS, headers=scene["owner"]), 403)

    @pytest.mark.parametrize("url", ["ftp://example.com/hook", "https://user:pw@example.com/hook", "example.com",
                                     "http://169.254.169.254/latest", "http://10.1.2.3/hook", "http://[::1]/hook",
                                     "https://example.com/hook#frag"])
    def test_unsafe_urls_are_refused(self, scene, url):
        response = scene["client"].post(WEBHOOKS, json={"url": url, "events": ["upload.added"]},
                                        headers=scene["admin"])
        assert "url" in assert_problem(response, 422)["errors"]

    def test_unknown_events_are_refused(self, scene, receiver):
        response = scene["client"].post(WEBHOOKS, json={"url": receiver.url, "events": ["patient.died"]},
                                        headers=scene["admin"])
        assert_problem(response, 422)

    def test_a_change_names_something_to_change_and_active_is_a_json_boolean(self, scene, receiver):
        url = f"{WEBHOOKS}/{register(scene, receiver.url)['id']}"
        for body in ({}, {"active": 0}, {"active": "false"}):
            assert_problem(scene["client"].patch(url, json=body, headers=scene["admin"]), 422, "validation_failed")
        assert scene["client"].patch(url, json={"active": False}, headers=scene["admin"]).get_json()["active"] is False
        document = scene["client"].get("/api/v1/openapi.json").get_json()
        assert document["components"]["schemas"]["EndpointUpdateIn"]["minProperties"] == 1


class TestDelivery:
    def test_a_booking_arrives_signed_and_thin(self, scene, receiver):
        endpoint = register(scene, receiver.url)
        appointment = book(scene)
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        # The library of the specification verifies the signature, not our own code.
        payload = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
        assert payload["type"] == "appointment.booked"
        assert payload["data"] == {"appointment_id": appointment["id"], "patient_id": str(scene["pet"].id),
                                   "doctor_id": str(scene["doctor"].id), "status": "requested"}
        assert b"Itchy" not in request["body"] and b"Biscuit" not in request["body"]
        with pytest.raises(Exception):
            Webhook("whsec_" + "A" * 44).verify(request["body"], request["headers"])

    def test_only_subscribed_events_and_nothing_when_the_change_rolls_back(self, scene, receiver):
        register(scene, receiver.url, events=("appointment.cancelled",))
        appointment = book(scene)
        assert receiver.requests == []
        # A booking refused (the same slot again) stores no event.
        clash = scene["client"].post("/api/v1/appointments", headers=scene["owner"], json={
            "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "start": appointment["start"],
            "type": "video"})
        assert clash.status_code == 409
        assert db.session.scalar(select(func.count()).select_from(WebhookMessage)) == 0
        scene["client"].post(f"/api/v1/appointments/{appointment['id']}/cancel", headers=scene["owner"],
                             json={"reason": "feeling better"})
        assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["appointment.cancelled"]

    def test_a_receiver_that_fails_then_recovers_gets_every_event_exactly_once(self, scene, receiver):
        register(scene, receiver.url)
        receiver.script = [500, 503, 500, 502, 500, 500]
        first = book(scene, hour=10)
        book(scene, hour=11)
        for action, who in (("confirm", "doctor_user"), ("cancel", "owner")):
            response = scene["client"].post(f"/api/v1/appointments/{first['id']}/{action}", headers=scene[who],
                                            json={"reason": "plans changed"} if action == "cancel" else {})
            assert response.status_code == 200, response.get_data(as_text=True)
        emitted = set(db.session.scalars(select(WebhookMessage.id)))
        assert len(emitted) == 4
        clock = utcnow()
        for _ in range(10):
            clock += timedelta(hours=7)  # past the longest backoff
            delivery.deliver_due(now=clock)
        assert sorted(receiver.accepted_ids()) == sorted(emitted)  # each once, none lost
        assert len(receiver.requests) > len(emitted)  # and it did take retries
        retried = {r["headers"]["webhook-id"] for r in receiver.requests if r["status"] >= 500}
        assert retried <= emitted  # retries carry the event's own webhook-id
        statuses = db.session.scalars(select(WebhookDelivery.status)).all()
        assert statuses == ["delivered"] * 4

    def test_backoff_grows_with_jitter_inside_its_bounds(self, hooks_app):
        samples = {attempts: [delivery.backoff(attempts) for _ in range(50)] for attempts in (1, 3, 12)}
        assert all(30 <= sample <= 6 * 3600 for drawn in samples.values() for sample in drawn)
        assert set(samples[1]) == {30}  # the first ceiling is the base itself: nothing to jitter over
        assert max(samples[3]) <= 120
        # Jittered (50 uniform floats practically never collide; rounded to 3 places, as this test once did, two
        # of them did in about one run in seventy) and growing with the attempts.
        assert len(set(samples[3])) >= 45 and len(set(samples[12])) >= 45
        assert sum(samples[12]) > sum(samples[3])

    def test_410_disables_the_endpoint_at_once(self, scene, receiver):
        endpoint = register(scene, receiver.url)
        receiver.script = [410]
        book(scene)
        shown = scene["client"].get(f"{WEBHOOKS}/{endpoint['id']}", headers=scene["admin"]).get_json()
        assert shown["active"] is False and shown["disabled_reason"] == "gone"
        book(scene, hour=11)
        delivery.deliver_due(now=utcnow() + timedelta(days=1))
        assert len(receiver.requests) == 1  # nothing goes to a disabled endpoint
        # Events while disabled are not queued for it; re-enabled, the delivery that got the 410 goes out.
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        scene["client"].patch(f"{WEBHOOKS}/{endpoint['id']}", json={"active": True}, headers=scene["admin"])
        delivery.deliver_due(now=utcnow() + timedelta(days=2))
        assert receiver.accepted_ids() == [receiver.requests[0]["headers"]["webhook-id"]]

    def test_a_failure_streak_disables_the_endpoint(self, make_app, gen_user, gen_patient, gen_doctor, auth,
                                                   receiver):
        app = make_app(WEBHOOK_DISABLE_AFTER_FAILURES=3, **LOOPBACK_ALLOWED)
        with app.app_context():
            owner, admin = gen_user(), gen_user(role="admin")
            _, doctor = gen_doctor(species=("dog",))
            scene = {"client": app.test_client(), "admin": auth(admin), "owner": auth(owner), "doctor": doctor,
                     "pet": gen_patient(owner, species="dog")}
            endpoint = register(scene, receiver.url)
            receiver.script = [500] * 10
            book(scene)
            for step in range(1, 5):
                delivery.deliver_due(now=utcnow() + timedelta(hours=7 * step))
            assert len(receiver.requests) == 3
            row = db.session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
            assert (row.active, row.disabled_reason, row.failure_streak) == (False, "failure_streak", 3)

    def test_redirects_are_not_followed(self, scene, receiver):
        register(scene, receiver.url)
        receiver.script = [302]
        book(scene)
        assert len(receiver.requests) == 1
        assert db.session.scalar(select(WebhookDelivery)).last_status_code == 302
        assert db.session.scalar(select(WebhookDelivery)).status == "pending"

    def test_the_delivery_log_and_replay(self, scene, receiver):
        endpoint = register(scene, receiver.url)
        receiver.script = [500]
        book(scene)
        log = scene["client"].get(f"{WEBHOOKS}/{endpoint['id']}/deliveries", headers=scene["admin"]).get_json()
        assert log["total"] == 1
        entry = log["items"][0]
        assert entry["status"] == "pending" and entry["attempt_log"][0]["status_code"] == 500
        replayed = scene["client"].post(f"{WEBHOOKS}/{endpoint['id']}/deliveries/{entry['id']}/replay",
                                        headers=scene["admin"])
        assert replayed.status_code == 202, replayed.get_data(as_text=True)
        assert replayed.get_json()["status"] == "delivered"
        assert receiver.accepted_ids() == [entry["message_id"]]
        # Replaying a delivered one sends the same webhook-id again, for the receiver to de-duplicate.
        scene["client"].post(f"{WEBHOOKS}/{endpoint['id']}/deliveries/{entry['id']}/replay", headers=scene["admin"])
        assert receiver.accepted_ids() == [entry["message_id"]] * 2
        missing = scene["client"].post(f"{WEBHOOKS}/{endpoint['id']}/deliveries/{endpoint['id']}/replay",
                                       headers=scene["admin"])
        assert_problem(missing, 404)


class TestSSRF:
    @pytest.mark.parametrize("address", ["169.254.169.254", "127.0.0.1", "10.0.0.5", "fd00:ec2::254", "::1"])
    def test_a_hostname_resolving_to_an_internal_address_is_refused(self, make_app, address, monkeypatch):
        app = make_app()  # no allow-list
        monkeypatch.setattr(transport, "resolve", lambda host, port: [address])
        contacted = []
        monkeypatch.setattr(transport.socket, "create_connection", lambda *a, **k: contacted.append(a))
        with app.app_context():
            outcome = transport.post("http://hooks.example.com/in", b"{}", {}, allowed_networks=(), timeout=1)
        assert outcome.status_code is None and outcome.error.startswith("refused")
        assert contacted == []

    def test_one_bad_answer_among_good_ones_is_refused(self, monkeypatch):
        monkeypatch.setattr(transport, "resolve", lambda host, port: ["93.184.215.14", "169.254.169.254"])
        outcome = transport.post("http://hooks.example.com/in", b"{}", {}, allowed_networks=(), timeout=1)
        assert outcome.error.startswith("refused")

    def test_the_connection_goes_to_the_checked_address(self, scene, receiver, monkeypatch):
        """hooks.example.test resolves (once) to the local receiver, allowed by the test's allow-list; the
        request reaches it with the hostname in Host."""
        lookups = []

        def resolve(host, port):
            lookups.append(host)
            return ["127.0.0.1"]

        monkeypatch.setattr(transport, "resolve", resolve)
        register(scene, receiver.url.replace("127.0.0.1", "hooks.example.test"))
        book(scene)
        assert lookups == ["hooks.example.test"]
        assert receiver.requests[0]["headers"]["Host"].startswith("hooks.example.test")
        assert receiver.accepted_ids()

    def test_a_delivery_to_a_metadata_address_is_refused_and_logged(self, make_app, gen_user, gen_patient,
                                                                     gen_doctor, auth, monkeypatch):
        app = make_app()
        monkeypatch.setattr(transport, "resolve", lambda host, port: ["169.254.169.254"])
        with app.app_context():
            owner, admin = gen_user(), gen_user(role="admin")
            _, doctor = gen_doctor(species=("dog",))
            scene = {"client": app.test_client(), "admin": auth(admin), "owner": auth(owner), "doctor": doctor,
                     "pet": gen_patient(owner, species="dog")}
            register(scene, "http://metadata.example.test/hook")
            book(scene)
            row = db.session.scalar(select(WebhookDelivery))
            assert row.status == "pending" and row.last_error.startswith("refused")


def test_consultation_diagnosis_and_upload_events_are_thin(scene, receiver, gen_appointment):
    """Every other event the lower domains signal: ids only, never the diagnosis, summary or file name."""
    import io

    from tests.test_uploads import png

    endpoint = register(scene, receiver.url, events=("consultation.started", "consultation.ended",
                                                     "diagnosis.urgent", "upload.added"))
    client, pet = scene["client"], scene["pet"]
    appointment = gen_appointment(scene["doctor"], pet, utcnow() - timedelta(minutes=5), status="confirmed")
    started = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                          headers=scene["doctor_user"]).get_json()
    ended = client.post(f"/api/v1/consultations/{started['id']}/end", headers=scene["doctor_user"],
                        json={"summary": "Otitis externa, drops prescribed", "diagnosis": "Otitis externa"})
    assert ended.status_code == 200, ended.get_data(as_text=True)
    urgent = client.post("/api/v1/ai/diagnoses", headers=scene["owner"], json={
        "patient_id": str(pet.id), "age_years": 5, "symptoms": [{"code": code, "severity": 6, "duration_days": 1}
                                                for code in ("unproductive_retching", "distended_abdomen")]})
    assert urgent.get_json()["urgency"]["level"] == 5
    uploaded = client.post("/api/v1/uploads", headers=scene["owner"], content_type="multipart/form-data",
                           data={"patient_id": str(pet.id), "file": (io.BytesIO(png()), "biscuit-ear.png")})
    assert uploaded.status_code == 201
    payloads = [Webhook(endpoint["secret"]).verify(r["body"], r["headers"]) for r in receiver.requests]
    assert [(p["type"], p["data"]) for p in payloads] == [
        ("consultation.started", {"consultation_id": started["id"], "appointment_id": str(appointment.id),
                                  "patient_id": str(pet.id)}),
        ("consultation.ended", {"consultation_id": started["id"], "appointment_id": str(appointment.id),
                                "patient_id": str(pet.id)}),
        ("diagnosis.urgent", {"diagnosis_id": urgent.get_json()["id"], "patient_id": str(pet.id)}),
        ("upload.added", {"upload_id": uploaded.get_json()["id"], "patient_id": str(pet.id)}),
    ]
    raw = b"".join(r["body"] for r in receiver.requests)
    assert b"Otitis" not in raw and b"biscuit-ear" not in raw and b"retching" not in raw


def test_vitals_alerts_opening_and_resolving_are_announced_thin(scene, receiver):
    """A device's readings open an alert and later resolve it: two events, ids only (no measurement, no value)."""
    endpoint = register(scene, receiver.url, events=("vitals.alert_opened", "vitals.alert_resolved"))
    client, pet = scene["client"], scene["pet"]
    rule = client.post("/api/v1/vitals/alert-rules", headers=scene["admin"], json={
        "species": "dog", "measurement": "heart_rate", "direction": "above", "threshold": 160,
        "clear_threshold": 140, "min_duration_seconds": 0})
    assert rule.status_code == 201, rule.get_data(as_text=True)
    start = utcnow() - timedelta(hours=1)
    for n, value in enumerate((185, 130)):
        sent = client.post("/api/v1/vitals/batch", headers=scene["owner"], json={
            "patient_id": str(pet.id), "readings": [{
                "sample_id": f"w{n}", "measurement": "heart_rate", "value": value, "unit": "/min",
                "taken_at": iso(start + timedelta(minutes=n))}]})
        assert sent.status_code == 200, sent.get_data(as_text=True)
    (alert,) = client.get(f"/api/v1/vitals/alerts?patient_id={pet.id}", headers=scene["owner"]).get_json()["items"]
    payloads = [Webhook(endpoint["secret"]).verify(r["body"], r["headers"]) for r in receiver.requests]
    assert [(p["type"], p["data"]) for p in payloads] == [
        ("vitals.alert_opened", {"alert_id": alert["id"], "patient_id": str(pet.id)}),
        ("vitals.alert_resolved", {"alert_id": alert["id"], "patient_id": str(pet.id)}),
    ]
    assert b"185" not in b"".join(r["body"] for r in receiver.requests)
