"""Vitals: idempotent batch ingest, units, devices, window and downsampled queries, alert rules and alerts."""

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Integer, cast, func, select
from sqlalchemy import update as sa_update

from pawmanity.care.models import WeightMeasurement
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification
from pawmanity.vitals import readings as readings_service
from pawmanity.vitals.models import Alert, Device, HourlyRollup, Observation
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
    def test_devices_are_listed_in_pages_oldest_first(self, client, home):
        for name in ("Collar", "Scale", "Feeder"):
            assert client.post(f"{VITALS}/devices", headers=home["headers"],
                               json={"patient_id": str(home["pet"].id), "name": name}).status_code == 201
        pages = [client.get(f"{VITALS}/devices?patient_id={home['pet'].id}&per_page=2&page={n}",
                            headers=home["headers"]).get_json() for n in (1, 2)]
        assert [device["name"] for page in pages for device in page["items"]] == ["Collar", "Scale", "Feeder"]
        assert [(page["page"], page["per_page"], page["total"]) for page in pages] == [(1, 2, 3), (2, 2, 3)]

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
        # Hysteresis compares two numbers, which JSON Schema cannot: a refusal of its own. Species xor patient_id is
        # a schema rule, and the document states it.
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]),
                                   json={**body, "clear_threshold": 210}), 422, "clear_threshold_on_wrong_side")
        for both_or_neither in ({**body, "species": "dog"}, {k: v for k, v in body.items() if k != "patient_id"}):
            assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]),
                                       json=both_or_neither), 422, "validation_failed")
        rule_in = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["AlertRuleIn"]
        assert [alternative["required"] for alternative in rule_in["oneOf"]] == [["species"], ["patient_id"]]
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json={
            **body, "patient_id": None, "species": "dog"}), 422)
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json={
            key: value for key, value in {**body, "species": "cat"}.items() if key != "patient_id"}), 403)
        assert client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json=body).status_code == 201
        assert_problem(client.post(f"{VITALS}/alert-rules", headers=auth(watched["doctor_user"]), json=body), 409,
                       "rule_exists")
        in_force = client.get(f"{VITALS}/alert-rules?patient_id={watched['pet'].id}",
                              headers=watched["headers"]).get_json()
        assert [(rule["threshold"], rule["patient_id"]) for rule in in_force["items"]] == [(200, str(watched["pet"].id))]
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


def assert_rollups_match_the_readings():
    """Every hourly rollup is exactly the count, sum, min and max of its hour's readings, and no hour is missing."""
    hour = func.floor(func.date_part("epoch", Observation.taken_at) / 3600) * 3600 \
        if db.engine.dialect.name == "postgresql" else \
        cast(func.strftime("%s", Observation.taken_at), Integer) / 3600 * 3600
    raw = {(str(patient), measurement, int(at)): (count, pytest.approx(total), low, high)
           for patient, measurement, at, count, total, low, high in db.session.execute(
               select(Observation.patient_id, Observation.measurement, hour, func.count(), func.sum(Observation.value),
                      func.min(Observation.value), func.max(Observation.value))
               .group_by(Observation.patient_id, Observation.measurement, hour))}
    rollups = {(str(r.patient_id), r.measurement, r.hour): (r.count, r.total, r.minimum, r.maximum)
               for r in db.session.scalars(select(HourlyRollup))}
    assert rollups == raw and rollups


class TestRollups:
    def test_the_rollups_agree_with_the_readings_through_inserts_and_updates(self, client, home):
        start = (utcnow() - timedelta(days=3)).replace(minute=17, second=0, microsecond=0)
        readings = [{"sample_id": f"r{n}", "measurement": "heart_rate", "value": 50 + (n * 37) % 90, "unit": "/min",
                     "taken_at": iso(start + timedelta(minutes=7 * n))} for n in range(300)]
        post_batch(client, home["headers"], home["pet"], readings[150:])
        post_batch(client, home["headers"], home["pet"], readings[:150])
        # A higher version moves a reading to another hour and to a new extreme: both hours are recomputed.
        moved = {**readings[0], "value": 250, "taken_at": iso(start + timedelta(hours=20, minutes=3)), "version": 2}
        assert post_batch(client, home["headers"], home["pet"], [moved, {**readings[5], "value": 20, "version": 2}]) \
            == ["updated", "updated"]
        post_batch(client, home["headers"], home["pet"], [
            {"sample_id": "t1", "measurement": "body_temperature", "value": 38.5, "unit": "Cel",
             "taken_at": iso(start)}])
        assert_rollups_match_the_readings()
        # The series read from rollups (whole hours) and readings (the partial first and last hours) is the series
        # of the readings alone, for every bucket of whole hours.
        begin, end = start + timedelta(minutes=41), start + timedelta(hours=33, minutes=12)
        for seconds in (3600, 6 * 3600, 86400):
            from_rollups = readings_service.series(home["pet"].id, "heart_rate", begin, end, seconds)
            from_readings = readings_service.series(home["pet"].id, "heart_rate", begin, end, seconds, rollups=False)
            assert from_rollups.keys() == from_readings.keys() and len(from_rollups) > 1
            for at, (low, high, total, count) in from_readings.items():
                assert from_rollups[at] == (low, high, pytest.approx(total), count)
        window = (f"patient_id={home['pet'].id}&measurement=heart_rate&from={iso(begin)}&to={iso(end)}"
                  ).replace("+", "%2B")
        points = client.get(f"{VITALS}?{window}&bucket=1h", headers=home["headers"]).get_json()["points"]
        assert sum(point["count"] for point in points) == client.get(
            f"{VITALS}?{window}&per_page=1", headers=home["headers"]).get_json()["total"]
        assert max(point["max"] for point in points) == 250

    def test_a_rebuild_recomputes_what_was_written_around_the_app(self, client, home):
        post_batch(client, home["headers"], home["pet"], heart_rates(90))
        db.session.execute(sa_update(Observation).values(value=Observation.value + 1000))  # a bulk fix in SQL
        db.session.commit()
        assert db.session.scalar(select(func.max(HourlyRollup.maximum))) < 1000
        assert readings_service.rebuild_rollups() == db.session.scalar(select(func.count()).select_from(HourlyRollup))
        assert db.session.scalar(select(func.max(HourlyRollup.maximum))) > 1000
        assert_rollups_match_the_readings()


class TestWeights:
    def test_a_recorded_weight_is_a_body_weight_reading_too(self, client, auth, home):
        measured_at = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
        response = client.post(f"/api/v1/patients/{home['pet'].id}/weights", headers=home["headers"],
                                json={"weight_kg": 12.345, "measured_at": iso(measured_at)})
        assert response.status_code == 201, response.get_json()
        created = client.post("/api/v1/patients", headers=home["headers"],
                              json={"name": "Rex", "species": "dog", "weight_kg": 30})
        assert created.status_code == 201, created.get_json()
        updated = client.patch(f"/api/v1/patients/{home['pet'].id}", headers=home["headers"], json={"weight_kg": 13})
        assert updated.status_code == 200, updated.get_json()
        weights = db.session.scalars(select(WeightMeasurement).order_by(WeightMeasurement.id)).all()
        readings = {r.sample_id: r for r in db.session.scalars(select(Observation))}
        assert sorted(readings) == sorted(f"weight-{w.id}" for w in weights) and len(weights) == 3
        for weight in weights:
            reading = readings[f"weight-{weight.id}"]
            assert (reading.patient_id, reading.measurement, reading.loinc, reading.unit, reading.taken_at,
                    reading.source_kind, reading.source_id) == (
                weight.patient_id, "body_weight", "29463-7", "kg", weight.measured_at, "user", home["owner"].id)
            assert reading.value == pytest.approx(float(weight.weight_kg))
        window = (f"patient_id={home['pet'].id}&measurement=29463-7&from={iso(measured_at - timedelta(hours=1))}"
                  f"&to={iso(utcnow() + timedelta(minutes=1))}").replace("+", "%2B")
        listed = client.get(f"{VITALS}?{window}", headers=home["headers"]).get_json()["items"]
        assert [item["value"] for item in listed] == [12.345, 13]
        assert_rollups_match_the_readings()

    def test_a_refused_weight_leaves_no_reading(self, client, home):
        response = client.post(f"/api/v1/patients/{home['pet'].id}/weights", headers=home["headers"],
                               json={"weight_kg": 12, "measured_at": iso(utcnow() + timedelta(days=1))})
        assert_problem(response, 422)
        assert rows() == 0


@postgres_only
def test_concurrent_batches_of_one_patient_keep_the_rollups_exact(make_app, gen_user, gen_patient, tokens_for):
    """Different samples in the same hours, sent at once: each batch's recompute must see the others' readings."""
    app = make_app()
    with app.app_context():
        owner = gen_user()
        pet_id = str(gen_patient(owner).id)
        token = tokens_for(owner)["access_token"]
    start = utcnow() - timedelta(days=1)
    batches = [heart_rates(240, start=start + timedelta(seconds=n), value=60 + 10 * n, prefix=f"c{n}")
               for n in range(4)]
    barrier, statuses = threading.Barrier(len(batches)), []

    def send(readings):
        with app.app_context():
            barrier.wait()
            response = app.test_client().post(f"{VITALS}/batch", headers={"Authorization": f"Bearer {token}"},
                                              json={"patient_id": pet_id, "readings": readings})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(batches)
    with app.app_context():
        assert rows() == 960
        assert_rollups_match_the_readings()


def test_series_points_are_written_exactly_as_their_schema_would():
    from blueprints.vitals.schemas import BucketOut, SeriesOut

    start = utcnow().replace(minute=0, second=0, microsecond=0)
    points = [{"start": start + timedelta(hours=n), "min": 60 + n, "max": 90.5, "mean": 75.1234, "count": 60 - n}
              for n in range(3)]
    dumped = SeriesOut().dump({"patient_id": "p", "measurement": "heart_rate", "loinc": "8867-4", "unit": "/min",
                               "bucket": "1h", "points": points})
    assert dumped["points"] == BucketOut(many=True).dump(points) and dumped["points"][1]["start"].endswith("Z")
