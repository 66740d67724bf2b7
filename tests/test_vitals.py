"""Vitals: idempotent batch ingest, units, devices, window and downsampled queries, alert rules and alerts."""

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification
from pawmanity.vitals.models import Alert, Device, Observation
from tests.support import assert_problem, iso, postgres_only

VITALS = "/api/v1/vitals"


@pytest.fixture
def home(client, auth, gen_user, gen_patient):
    owner = gen_user()
    pet = gen_patient(owner, species="dog")
    return {"owner": owner, "pet": pet, "headers": auth(owner)}


def heart_rates(count, *, start=None, step=timedelta(minutes=1), value=80, prefix="s"):
    start = start or utcnow() - timedelta(days=1)
    return [{"sample_id": f"{prefix}-{n}", "measurement": "heart_rate", "value": value + n % 7, "unit": "/min",
             "taken_at": iso(start + n * step)} for n in range(count)]


def rows():
    return db.session.scalar(select(func.count()).select_from(Observation))


def post_batch(client, headers, patient, readings):
    response = client.post(f"{VITALS}/batch", headers=headers, json={"patient_id": str(patient.id),
                                                                       "readings": readings})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["status"] for item in response.get_json()["results"]]


class TestIngest:
    def test_the_same_batch_twice_or_its_halves_reversed_stores_one_row_per_sample(self, client, home):
        batch = heart_rates(40)
        assert post_batch(client, home["headers"], home["pet"], batch) == ["created"] * 40
        assert post_batch(client, home["headers"], home["pet"], batch) == ["duplicate"] * 40
        assert rows() == 40
        other = heart_rates(40, prefix="t")
        assert post_batch(client, home["headers"], home["pet"], other[20:]) == ["created"] * 20
        assert post_batch(client, home["headers"], home["pet"], other[:20]) == ["created"] * 20
        assert post_batch(client, home["headers"], home["pet"], other) == ["duplicate"] * 40
        assert rows() == 80

    def test_a_higher_version_replaces_a_lower_one_is_ignored(self, client, home):
        (reading,) = heart_rates(1)
        post_batch(client, home["headers"], home["pet"], [reading])
        assert post_batch(client, home["headers"], home["pet"], [{**reading, "value": 99, "version": 3}]) == \
            ["updated"]
        assert post_batch(client, home["headers"], home["pet"], [{**reading, "value": 11, "version": 2}]) == ["stale"]
        stored = db.session.scalar(select(Observation).execution_options(populate_existing=True))
        assert (stored.value, stored.version, rows()) == (99, 3, 1)
        both = [{**reading, "value": 120, "version": 5}, {**reading, "value": 121, "version": 4}]
        assert post_batch(client, home["headers"], home["pet"], both) == ["updated", "superseded"]

    def test_units_are_converted_and_bad_items_refused_one_by_one(self, client, home):
        now = utcnow()
        readings = [
            {"sample_id": "t", "measurement": "body_temperature", "value": 101.3, "unit": "[degF]"},
            {"sample_id": "g", "measurement": "2339-0", "value": 5.5, "unit": "mmol/L"},
            {"sample_id": "bp", "measurement": "systolic_bp", "value": 16, "unit": "kPa"},
            {"sample_id": "w", "measurement": "body_weight", "value": 22, "unit": "[lb_av]"},
            {"sample_id": "u", "measurement": "heart_rate", "value": 80, "unit": "furlongs"},
            {"sample_id": "m", "measurement": "mood", "value": 1, "unit": "1"},
            {"sample_id": "p", "measurement": "body_temperature", "value": 38.5, "unit": "K"},
            {"sample_id": "f", "measurement": "heart_rate", "value": 80, "unit": "/min",
             "at": now + timedelta(hours=1)},
        ]
        for reading in readings:
            reading["taken_at"] = iso(reading.pop("at", now - timedelta(minutes=1)))
        response = client.post(f"{VITALS}/batch", headers=home["headers"],
                               json={"patient_id": str(home["pet"].id), "readings": readings})
        results = response.get_json()["results"]
        assert [r["status"] for r in results] == ["created"] * 4 + ["rejected"] * 4
        assert [r["error"]["code"] for r in results[4:]] == ["unknown_unit", "unknown_measurement",
                                                             "implausible_value", "future_reading"]
        stored = {o.sample_id: (o.value, o.unit, o.loinc) for o in db.session.scalars(select(Observation))}
        assert stored["t"] == (38.5, "Cel", "8310-5")
        assert stored["g"] == (pytest.approx(99.0858), "mg/dL", "2339-0")
        assert stored["bp"] == (pytest.approx(120.0098), "mm[Hg]", "8480-6")
        assert stored["w"] == (pytest.approx(9.979), "kg", "29463-7")

    def test_a_single_reading_with_an_unknown_unit_is_422(self, client, home):
        url = f"{VITALS}?patient_id={home['pet'].id}"
        body = {"measurement": "spo2", "value": 97, "unit": "percent", "taken_at": iso(utcnow())}
        assert_problem(client.post(url, headers=home["headers"], json=body), 422, "unknown_unit")
        created = client.post(url, headers=home["headers"], json={**body, "unit": "%"})
        assert created.status_code == 201 and created.get_json()["loinc"] == "59408-5"

    @pytest.mark.parametrize("readings", [[], heart_rates(1001), [{"sample_id": "x"}],
                                          [{**heart_rates(1)[0], "taken_at": "2026-01-01T00:00:00"}],
                                          [{**heart_rates(1)[0], "sample_id": "bad id!"}],
                                          [{**heart_rates(1)[0], "value": "NaN"}]])
    def test_bad_batches_are_422_and_store_nothing(self, client, home, readings):
        response = client.post(f"{VITALS}/batch", headers=home["headers"],
                               json={"patient_id": str(home["pet"].id), "readings": readings})
        assert_problem(response, 422)
        assert rows() == 0

    def test_other_peoples_patients_are_404(self, client, auth, home, gen_user):
        stranger = auth(gen_user())
        assert_problem(client.post(f"{VITALS}/batch", headers=stranger, json={
            "patient_id": str(home["pet"].id), "readings": heart_rates(1)}), 404)
        window = f"patient_id={home['pet'].id}&measurement=heart_rate&from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"
        assert_problem(client.get(f"{VITALS}?{window}", headers=stranger), 404)
        assert_problem(client.get(f"{VITALS}?{window}&bucket=1d", headers=stranger), 404)
        assert_problem(client.post(f"{VITALS}/devices", headers=stranger, json={
            "patient_id": str(home["pet"].id), "name": "collar"}), 404)
        assert_problem(client.get(f"{VITALS}/alerts?patient_id={home['pet'].id}", headers=stranger), 404)
        assert_problem(client.post(f"{VITALS}/batch", json={"patient_id": str(home["pet"].id),
                                                            "readings": heart_rates(1)}), 401)


class TestDevices:
    def test_a_device_token_ingests_for_its_patient_only_until_revoked(self, client, home, gen_patient):
        created = client.post(f"{VITALS}/devices", headers=home["headers"],
                              json={"patient_id": str(home["pet"].id), "name": "Collar"})
        assert created.status_code == 201
        token, device_id = created.get_json()["token"], created.get_json()["id"]
        assert db.session.scalar(select(Device.token_hash)) != token and token not in str(
            db.session.execute(select(Device.__table__)).all())
        device = {"X-Device-Token": token}
        response = client.post(f"{VITALS}/batch", headers=device, json={"readings": heart_rates(3)})
        assert [r["status"] for r in response.get_json()["results"]] == ["created"] * 3
        assert {o.source_kind for o in db.session.scalars(select(Observation))} == {"device"}
        other_pet = gen_patient(home["owner"])
        assert_problem(client.post(f"{VITALS}/batch", headers=device, json={
            "patient_id": str(other_pet.id), "readings": heart_rates(1)}), 404)
        # The token is for ingest only: it opens nothing else.
        assert_problem(client.get(f"{VITALS}/devices?patient_id={home['pet'].id}", headers=device), 401)
        assert_problem(client.post(f"{VITALS}/batch", headers={"X-Device-Token": "pwdev_nope"},
                                   json={"readings": heart_rates(1)}), 401, "invalid_device_token")
        revoked = client.delete(f"{VITALS}/devices/{device_id}", headers=home["headers"])
        assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
        assert_problem(client.post(f"{VITALS}/batch", headers=device, json={"readings": heart_rates(1)}), 401)
        assert_problem(client.delete(f"{VITALS}/devices/{device_id}", headers=home["headers"]), 409)


class TestQueries:
    def test_raw_window_and_hourly_buckets(self, client, home):
        start = (utcnow() - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        readings = [{"sample_id": f"m{n}", "measurement": "heart_rate", "value": 60 + n, "unit": "/min",
                     "taken_at": iso(start + timedelta(minutes=n))} for n in range(150)]
        post_batch(client, home["headers"], home["pet"], readings)
        window = (f"patient_id={home['pet'].id}&measurement=8867-4&from={iso(start + timedelta(minutes=30))}"
                  f"&to={iso(start + timedelta(minutes=150))}").replace("+", "%2B")
        raw = client.get(f"{VITALS}?{window}&per_page=5", headers=home["headers"]).get_json()
        assert raw["total"] == 120 and [item["value"] for item in raw["items"]] == [90, 91, 92, 93, 94]
        series = client.get(f"{VITALS}?{window}&bucket=1h", headers=home["headers"]).get_json()
        assert client.get(f"{VITALS}/series?{window}&bucket=1h", headers=home["headers"]).get_json() == series
        assert series["unit"] == "/min"
        assert [(p["min"], p["max"], p["mean"], p["count"]) for p in series["points"]] == [
            (90, 119, 104.5, 30), (120, 179, 149.5, 60), (180, 209, 194.5, 30)]
        assert series["points"][0]["start"] == iso(start)

    @pytest.mark.parametrize("query", ["measurement=heart_rate&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
                                       "measurement=mood&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
                                       "measurement=heart_rate&from=2020-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
                                       "measurement=heart_rate&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"
                                       "&bucket=1m",
                                       "measurement=heart_rate&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"
                                       "&bucket=2h"])
    def test_bad_windows(self, client, home, query):
        assert_problem(client.get(f"{VITALS}?patient_id={home['pet'].id}&{query}", headers=home["headers"]), 422)


class TestAlerts:
    @pytest.fixture
    def watched(self, client, auth, home, gen_user, gen_doctor, gen_appointment):
        admin = gen_user("admin")
        doctor_user, doctor = gen_doctor()
        gen_appointment(doctor, home["pet"], utcnow() + timedelta(days=1))
        rule = client.post(f"{VITALS}/alert-rules", headers=auth(admin), json={
            "species": "dog", "measurement": "heart_rate", "direction": "above", "threshold": 160,
            "clear_threshold": 140, "min_duration_seconds": 120})
        assert rule.status_code == 201, rule.get_data(as_text=True)
        return {**home, "admin": admin, "doctor_user": doctor_user, "rule": rule.get_json()}

    def send(self, client, watched, values, *, start, prefix="a"):
        readings = [{"sample_id": f"{prefix}{n}", "measurement": "heart_rate", "value": value, "unit": "/min",
                     "taken_at": iso(start + timedelta(seconds=seconds))} for n, (seconds, value) in enumerate(values)]
        post_batch(client, watched["headers"], watched["pet"], readings)

    def alerts(self, client, watched, status=None):
        url = f"{VITALS}/alerts?patient_id={watched['pet'].id}" + (f"&status={status}" if status else "")
        return client.get(url, headers=watched["headers"]).get_json()["items"]

    def notified(self, user, kind):
        return db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.kind == kind))

    def test_duration_hysteresis_one_open_alert_and_notifications(self, client, auth, watched):
        start = utcnow() - timedelta(hours=1)
        self.send(client, watched, [(0, 170), (60, 175), (90, 120), (100, 170), (160, 180)], start=start)
        assert self.alerts(client, watched) == []  # never 120 s above 160 in a row
        self.send(client, watched, [(230, 181), (300, 190)], start=start, prefix="b")
        opened = self.alerts(client, watched, "open")
        assert len(opened) == 1 and opened[0]["opening_value"] == 181
        self.send(client, watched, [(400, 150), (500, 200), (600, 145)], start=start, prefix="c")
        assert len(self.alerts(client, watched)) == 1  # 150 and 145 are not back under 140: still the one alert
        self.send(client, watched, [(700, 130)], start=start, prefix="d")
        (alert,) = self.alerts(client, watched)
        assert alert["status"] == "resolved"
        for user in (watched["owner"], watched["doctor_user"]):
            assert self.notified(user, "vitals.alert_opened") == 1
            assert self.notified(user, "vitals.alert_resolved") == 1
        acknowledged = client.post(f"{VITALS}/alerts/{alert['id']}/acknowledge", headers=watched["headers"])
        assert acknowledged.status_code == 200 and acknowledged.get_json()["acknowledged_at"]

    def test_the_doctor_overrides_the_species_rule_for_one_patient(self, client, auth, watched, gen_doctor,
                                                                   gen_user):
        body = {"patient_id": str(watched["pet"].id), "measurement": "heart_rate", "direction": "above",
                "threshold": 200, "clear_threshold": 180, "min_duration_seconds": 0}
        other_doctor, _ = gen_doctor()
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(other_doctor), json=body), 404)
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]),
                                   json={**body, "clear_threshold": 210}), 422)
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json={
            **body, "patient_id": None, "species": "dog"}), 422)
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json={
            key: value for key, value in {**body, "species": "cat"}.items() if key != "patient_id"}), 403)
        assert client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json=body).status_code == 201
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json=body), 409,
                       "rule_exists")
        in_force = client.get(f"{VITALS}/alert-rules?patient_id={watched['pet'].id}",
                              headers=watched["headers"]).get_json()
        assert [(rule["threshold"], rule["patient_id"]) for rule in in_force] == [(200, str(watched["pet"].id))]
        self.send(client, watched, [(0, 190), (300, 195)], start=utcnow() - timedelta(hours=1))
        assert self.alerts(client, watched) == []
        self.send(client, watched, [(400, 205)], start=utcnow() - timedelta(hours=1), prefix="z")
        assert len(self.alerts(client, watched, "open")) == 1
        assert_problem(client.post(f"{VITALS}/alerts/{uuid.uuid4()}/acknowledge", headers=watched["headers"]), 404)
        stranger = auth(gen_user())
        alert_id = self.alerts(client, watched)[0]["id"]
        assert_problem(client.post(f"{VITALS}/alerts/{alert_id}/acknowledge", headers=stranger), 404)


@postgres_only
def test_concurrent_copies_of_a_batch_store_one_row_per_sample(make_app, gen_user, gen_patient, tokens_for):
    app = make_app()
    with app.app_context():
        owner = gen_user()
        pet_id = str(gen_patient(owner).id)
        token = tokens_for(owner)["access_token"]
    batch = heart_rates(500)
    copies = [batch, batch, batch[250:] + batch[:250], list(reversed(batch))]
    barrier, outcomes = threading.Barrier(len(copies)), []

    def send(readings):
        with app.app_context():
            barrier.wait()
            response = app.test_client().post(f"{VITALS}/batch", headers={"Authorization": f"Bearer {token}"},
                                              json={"patient_id": pet_id, "readings": readings})
            outcomes.append((response.status_code, [r["status"] for r in (response.get_json() or {}).get(
                "results", [])]))

    threads = [threading.Thread(target=send, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in outcomes] == [200] * len(copies), outcomes
    created = sum(statuses.count("created") for _, statuses in outcomes)
    with app.app_context():
        assert rows() == 500 and created == 500
        assert db.session.scalar(select(func.count(func.distinct(Observation.sample_id)))) == 500
        assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
