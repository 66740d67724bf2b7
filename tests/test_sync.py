"""Offline sync: pulls in commit order with tombstones and lost access, atomic idempotent pushes with conflicts,
per-record resolves, tombstone retention (410), and the concurrent-commit invariant on PostgreSQL."""

import random
import threading
import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import delete, func, select, text, update

from pawmanity.care.models import Guardianship, MedicalRecord, Patient
from pawmanity.conversations.models import Consultation, Message
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity.actor import Actor
from pawmanity.notifications.models import Notification
from pawmanity.sync import capture, retention
from pawmanity.sync import pull as pull_module
from pawmanity.sync.models import SyncChange, SyncCursor
from pawmanity.vitals.models import Observation
from tests.support import ON_POSTGRES, assert_problem, iso, next_slot, postgres_only

SYNC = "/api/v1/sync"
TABLES = ("patients", "medical_records", "appointments", "messages", "vitals", "notifications")


def pull(client, headers, cursor=None, status=200):
    response = client.get(f"{SYNC}/pull" + (f"?cursor={cursor}" if cursor is not None else ""), headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    if status == 200:
        assert set(body["changes"]) == set(TABLES)
        assert body["timestamp"] == body["cursor"] > 0  # WatermelonDB wants a positive number
    return body


def ids(body, table, kind):
    return {item if isinstance(item, str) else item["id"] for item in body["changes"][table][kind]}


def push(client, headers, changes, status=200, **extra):
    response = client.post(f"{SYNC}/push", headers={**headers, **extra}, json={"changes": changes})
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def add_record(patient, title="Rabies vaccine"):
    record = MedicalRecord(patient_id=patient.id, kind="vaccination", title=title, recorded_at=utcnow())
    db.session.add(record)
    db.session.commit()
    return record


def add_reading(patient, sample_id="s-1", value=80):
    reading = Observation(patient_id=patient.id, measurement="heart_rate", loinc="8867-4", unit="/min", value=value,
                          taken_at=utcnow(), source_kind="user", source_id=uuid.uuid4(), sample_id=sample_id)
    db.session.add(reading)
    db.session.commit()
    return reading


def notify(user, title="Hello"):
    notification = Notification(user_id=user.id, kind="system.test", title=title, data={"a": 1})
    db.session.add(notification)
    db.session.commit()
    return notification


@pytest.fixture
def family(gen_user, gen_patient, auth):
    alice, bob = gen_user(), gen_user()
    rex, tom = gen_patient(alice, species="dog"), gen_patient(bob, species="cat")
    return {"alice": alice, "bob": bob, "rex": rex, "tom": tom, "a": auth(alice), "b": auth(bob)}


class TestPull:
    def test_a_first_pull_sends_everything_the_caller_sees_and_nothing_else(self, client, family, gen_doctor,
                                                                            gen_appointment):
        rex, tom = family["rex"], family["tom"]
        mine, theirs = add_record(rex), add_record(tom)
        reading, _ = add_reading(rex), add_reading(tom)
        note, _ = notify(family["alice"]), notify(family["bob"])
        doctor, profile = gen_doctor()
        visit = gen_appointment(profile, rex, next_slot(), status="confirmed")
        gen_appointment(profile, tom, next_slot(hour=11), status="confirmed")
        talk = Consultation(appointment_id=visit.id, doctor_id=profile.id, patient_id=rex.id, started_by=doctor.id,
                            message_count=1)
        db.session.add(talk)
        db.session.flush()
        message = Message(consultation_id=talk.id, seq=1, sender_id=doctor.id, client_id="c1", body="Hi",
                          attachment_ids=[])
        db.session.add(message)
        db.session.commit()

        body = pull(client, family["a"])
        assert ids(body, "patients", "created") == {str(rex.id)}
        assert ids(body, "medical_records", "created") == {str(mine.id)}
        assert ids(body, "vitals", "created") == {str(reading.id)}
        assert ids(body, "notifications", "created") == {str(note.id)}
        assert ids(body, "appointments", "created") == {str(visit.id)}
        assert ids(body, "messages", "created") == {str(message.id)}
        assert str(theirs.id) not in str(body) and str(tom.id) not in str(body)
        (record,) = body["changes"]["medical_records"]["created"]
        assert record["version"] == 1 and record["patient_id"] == str(rex.id)
        assert body["changes"]["notifications"]["created"][0]["data"] == '{"a": 1}'  # raw values only
        assert all(not body["changes"][table][kind] for table in TABLES for kind in ("updated", "deleted"))

        # the doctor sees the patients they care for, their appointments and their consultation's messages
        seen = pull(client, pull_headers(client, doctor))
        assert ids(seen, "patients", "created") == {str(rex.id), str(tom.id)}
        assert len(ids(seen, "appointments", "created")) == 2
        assert ids(seen, "messages", "created") == {str(message.id)}

    def test_the_next_pull_sends_only_what_changed_created_or_updated(self, client, family):
        rex = family["rex"]
        first = pull(client, family["a"])
        response = client.patch(f"/api/v1/patients/{rex.id}", json={"name": "Rex II"}, headers=family["a"])
        assert response.status_code == 200, response.get_data(as_text=True)
        record = add_record(rex)
        add_record(family["tom"])
        second = pull(client, family["a"], first["cursor"])
        assert ids(second, "patients", "updated") == {str(rex.id)}
        assert second["changes"]["patients"]["updated"][0]["name"] == "Rex II"
        assert ids(second, "medical_records", "created") == {str(record.id)}
        assert not ids(second, "patients", "created")
        third = pull(client, family["a"], second["cursor"])
        assert all(not third["changes"][table][kind] for table in TABLES
                   for kind in ("created", "updated", "deleted"))

    def test_deletions_by_any_path_reach_the_client_as_tombstones(self, client, family):
        rex = family["rex"]
        records = [add_record(rex, f"r{n}") for n in range(3)]
        readings = [str(add_reading(rex, f"s{n}").id) for n in range(2)]
        note = notify(family["alice"])
        note_id = str(note.id)
        first = pull(client, family["a"])
        # a bulk ORM delete, raw SQL and a session delete: no per-object ORM event fires for the first two
        db.session.execute(delete(MedicalRecord).where(MedicalRecord.id.in_([records[0].id, records[1].id])))
        db.session.execute(text("DELETE FROM vital_observations WHERE patient_id = :p"),
                           {"p": rex.id if ON_POSTGRES else rex.id.hex})
        db.session.delete(note)
        db.session.commit()
        second = pull(client, family["a"], first["cursor"])
        assert ids(second, "medical_records", "deleted") == {str(records[0].id), str(records[1].id)}
        assert ids(second, "vitals", "deleted") == set(readings)
        assert ids(second, "notifications", "deleted") == {note_id}
        # someone else's deletions are not announced to Alice
        other = add_record(family["tom"])
        bob_first = pull(client, family["b"])
        db.session.execute(delete(MedicalRecord).where(MedicalRecord.id == other.id))
        db.session.commit()
        assert not ids(pull(client, family["a"], second["cursor"]), "medical_records", "deleted")
        assert ids(pull(client, family["b"], bob_first["cursor"]), "medical_records", "deleted") == {str(other.id)}

    def test_erasing_a_patient_elsewhere_sends_every_id_the_device_held(self, client, family):
        rex = family["rex"]
        record, reading = str(add_record(rex).id), str(add_reading(rex).id)
        rex_id = str(rex.id)
        first = pull(client, family["a"])
        # as an erasure job would: one raw statement, the rest by foreign-key cascade (on PostgreSQL)
        db.session.execute(text("DELETE FROM patients WHERE id = :p"), {"p": rex.id if ON_POSTGRES else rex.id.hex})
        db.session.commit()
        db.session.expunge_all()
        second = pull(client, family["a"], first["cursor"])
        assert ids(second, "patients", "deleted") == {rex_id}
        assert ids(second, "medical_records", "deleted") == {record}
        assert ids(second, "vitals", "deleted") == {reading}
        if ON_POSTGRES:  # the cascaded deletes were captured as tombstones of their own
            logged = db.session.execute(select(SyncChange.table_name, SyncChange.op)).all()
            assert {("medical_records", "D"), ("vital_observations", "D"), ("patients", "D")} <= set(logged)
        assert not ids(pull(client, family["b"]), "patients", "deleted")  # a full sync has no deletions

    def test_an_erasure_by_the_privacy_plugin_reaches_the_device(self, client, family, gen_user, auth):
        rex = family["rex"]
        record, reading, rex_id = str(add_record(rex).id), str(add_reading(rex).id), str(rex.id)
        first = pull(client, family["a"])
        erased = client.post(f"/api/v1/erasures/patients/{rex_id}", headers=auth(gen_user(role="admin")),
                             json={"reason": "the guardian's written request"})
        assert erased.status_code == 200, erased.get_data(as_text=True)
        db.session.expunge_all()
        second = pull(client, family["a"], first["cursor"])
        assert ids(second, "patients", "deleted") == {rex_id}
        assert ids(second, "medical_records", "deleted") == {record}
        assert ids(second, "vitals", "deleted") == {reading}

    def test_losing_access_sends_ids_and_gaining_it_sends_the_rows(self, client, family):
        rex, bob = family["rex"], family["bob"]
        record, reading = add_record(rex), add_reading(rex)
        before = pull(client, family["b"])
        assert ids(before, "patients", "created") == {str(family["tom"].id)}
        db.session.add(Guardianship(patient_id=rex.id, user_id=bob.id, relation="family"))
        db.session.commit()
        gained = pull(client, family["b"], before["cursor"])  # nothing of Rex changed, yet Bob now holds it all
        assert ids(gained, "patients", "created") == {str(rex.id)}
        assert ids(gained, "medical_records", "created") == {str(record.id)}
        assert ids(gained, "vitals", "created") == {str(reading.id)}
        db.session.execute(delete(Guardianship).where(Guardianship.user_id == bob.id,
                                                      Guardianship.patient_id == rex.id))
        db.session.commit()
        lost = pull(client, family["b"], gained["cursor"])
        assert ids(lost, "patients", "deleted") == {str(rex.id)}
        assert ids(lost, "medical_records", "deleted") == {str(record.id)}
        assert ids(lost, "vitals", "deleted") == {str(reading.id)}
        assert not any(lost["changes"][table][kind] for table in TABLES for kind in ("created", "updated"))

    def test_an_archived_patient_leaves_its_guardians_devices(self, client, family):
        rex = family["rex"]
        first = pull(client, family["a"])
        assert client.delete(f"/api/v1/patients/{rex.id}", headers=family["a"]).status_code == 204
        assert ids(pull(client, family["a"], first["cursor"]), "patients", "deleted") == {str(rex.id)}

    @pytest.mark.parametrize("query", ["cursor=abc", "cursor=-1", "cursor=9007199254740993", "since=1",
                                       "cursor="])
    def test_bad_cursors_are_422(self, client, family, query):
        assert_problem(client.get(f"{SYNC}/pull?{query}", headers=family["a"]), 422)

    def test_pulls_need_a_token(self, client):
        assert_problem(client.get(f"{SYNC}/pull"), 401)


def pull_headers(client, user):
    from flask import current_app  # noqa: F401  (inside the app context of the test)

    from pawmanity.identity import tokens
    pair = tokens.issue_session(user, Actor(ip="127.0.0.1"))
    db.session.commit()
    return {"Authorization": f"Bearer {pair['access_token']}"}


class TestCursorExpiry:
    def test_someone_elses_cursor_or_an_unknown_one_is_410(self, client, family):
        cursor = pull(client, family["a"])["cursor"]
        body = assert_problem(client.get(f"{SYNC}/pull?cursor={cursor}", headers=family["b"]), 410,
                              "cursor_expired")
        assert body["resync"]["path"] == "/api/v1/sync/pull"
        assert_problem(client.get(f"{SYNC}/pull?cursor={cursor + 1000}", headers=family["a"]), 410,
                       "cursor_expired")

    def test_a_cursor_older_than_the_tombstones_is_410(self, app, client, family):
        old = pull(client, family["a"])["cursor"]
        days = app.config["SYNC_TOMBSTONE_DAYS"]
        db.session.execute(update(SyncCursor).where(SyncCursor.id == old)
                           .values(created_at=utcnow() - timedelta(days=days, minutes=1)))
        db.session.commit()
        assert_problem(client.get(f"{SYNC}/pull?cursor={old}", headers=family["a"]), 410, "cursor_expired")
        assert pull(client, family["a"])["cursor"] > old  # a full sync starts over

    def test_the_purge_drops_only_what_is_older_than_the_retention(self, app, client, family):
        days = app.config["SYNC_TOMBSTONE_DAYS"]
        kept, gone = add_record(family["rex"]), add_record(family["rex"])
        db.session.execute(delete(MedicalRecord).where(MedicalRecord.id.in_([kept.id, gone.id])))
        db.session.commit()
        aged = (SyncChange.row_id.in_([str(gone.id), gone.id.hex])) & (SyncChange.table_name == "medical_records")
        db.session.execute(update(SyncChange).where(aged).values(changed_at=utcnow() - timedelta(days=days + 1)))
        old_cursor = pull(client, family["a"])["cursor"]
        db.session.execute(update(SyncCursor).where(SyncCursor.id == old_cursor)
                           .values(created_at=utcnow() - timedelta(days=days + 1)))
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(SyncChange))
        assert retention.purge() == (2, 1)  # the old record's insert and delete, and the old cursor
        assert db.session.scalar(select(func.count()).select_from(SyncChange)) == before - 2
        tombstones = db.session.scalars(select(SyncChange.row_id).where(SyncChange.op == "D")).all()
        assert {str(uuid.UUID(row_id)) for row_id in tombstones} == {str(kept.id)}
        assert db.session.get(SyncCursor, old_cursor) is None
        assert_problem(client.get(f"{SYNC}/pull?cursor={old_cursor}", headers=family["a"]), 410, "cursor_expired")

    def test_a_cursor_below_the_purge_watermark_is_410(self, app, client, family):
        cursor = pull(client, family["a"])["cursor"]
        add_record(family["rex"])
        db.session.execute(update(SyncChange).values(changed_at=utcnow() - timedelta(days=400)))
        db.session.commit()
        retention.purge()
        assert_problem(client.get(f"{SYNC}/pull?cursor={cursor}", headers=family["a"]), 410, "cursor_expired")

    def test_log_ids_are_never_reused_after_a_purge(self, app, client, family):
        add_record(family["rex"])
        highest = db.session.scalar(select(func.max(SyncChange.id)))
        db.session.execute(update(SyncChange).values(changed_at=utcnow() - timedelta(days=400)))
        db.session.commit()
        retention.purge()
        assert db.session.scalar(select(func.count()).select_from(SyncChange)) == 0
        add_record(family["rex"])
        assert db.session.scalar(select(func.max(SyncChange.id))) > highest

    def test_the_purge_command(self, app, family):
        result = app.test_cli_runner().invoke(args=["sync", "purge"])
        assert result.exit_code == 0 and "purged" in result.output


def new_patient(**fields):
    return {"id": str(uuid.uuid4()), "name": "Mia", "species": "cat", **fields}


def new_record(patient_id, **fields):
    return {"id": str(uuid.uuid4()), "patient_id": str(patient_id), "kind": "note", "title": "Ate well",
            "recorded_at": iso(utcnow()), **fields}


class TestPush:
    def test_a_batch_creates_and_updates_and_a_pull_returns_it(self, client, family):
        rex = family["rex"]
        mia = new_patient(_status="created", _changed="", created_at=0, updated_at=0)  # WatermelonDB's extras
        changes = {
            "patients": {"created": [mia], "updated": [{"id": str(rex.id), "version": rex.version, "name": "Rex B"}],
                         "deleted": []},
            "medical_records": {"created": [new_record(mia["id"]), new_record(rex.id)]},
            "appointments": {"created": [], "updated": [], "deleted": []},
        }
        first = pull(client, family["a"])
        items = push(client, family["a"], changes).get_json()["items"]
        assert sorted(item["status"] for item in items) == ["created", "created", "created", "updated"]
        assert db.session.get(Patient, rex.id).name == "Rex B"
        after = pull(client, family["a"], first["cursor"])
        assert ids(after, "patients", "created") == {mia["id"]}
        assert ids(after, "patients", "updated") == {str(rex.id)}
        assert len(ids(after, "medical_records", "created")) == 2

    def test_the_same_batch_again_changes_nothing_and_a_key_replays(self, client, family):
        rex = family["rex"]
        changes = {"patients": {"created": [new_patient()],
                                "updated": [{"id": str(rex.id), "version": rex.version, "breed": "Collie"}]},
                   "medical_records": {"created": [new_record(rex.id)]}}
        push(client, family["a"], changes)
        again = push(client, family["a"], changes).get_json()["items"]
        assert {item["status"] for item in again} == {"unchanged"}
        assert db.session.scalar(select(func.count()).select_from(MedicalRecord)) == 1
        assert db.session.get(Patient, rex.id).version == 2
        key = {"Idempotency-Key": "sync-1"}
        first = push(client, family["a"], {"medical_records": {"created": [new_record(rex.id)]}}, **key)
        replay = push(client, family["a"], {"medical_records": {"created": [new_record(rex.id)]}}, status=422,
                      **key)  # the same key with another batch
        assert_problem(replay, 422, "idempotency_key_reused")
        body = {"medical_records": {"created": [new_record(rex.id)]}}
        push(client, family["a"], body, **{"Idempotency-Key": "sync-2"})
        replayed = push(client, family["a"], body, **{"Idempotency-Key": "sync-2"})
        assert replayed.headers["Idempotent-Replayed"] == "true" and first.status_code == 200
        assert db.session.scalar(select(func.count()).select_from(MedicalRecord)) == 3

    def test_a_conflict_refuses_the_whole_batch_with_the_servers_copy(self, client, family):
        rex = family["rex"]
        record = add_record(rex)
        seen = record.version
        changed = client.patch(f"/api/v1/patients/{rex.id}/records/{record.id}", json={"title": "Server's"},
                               headers={**family["a"], "If-Match": f'"{seen}"'})
        assert changed.status_code == 200, changed.get_data(as_text=True)
        fresh = new_record(rex.id)
        changes = {"patients": {"updated": [{"id": str(rex.id), "version": rex.version, "name": "Half"}]},
                   "medical_records": {"created": [fresh],
                                       "updated": [{"id": str(record.id), "version": seen, "title": "Mine"}]}}
        body = assert_problem(push(client, family["a"], changes, status=409), 409, "sync_conflict")
        (conflict,) = body["conflicts"]
        assert conflict["table"] == "medical_records" and conflict["id"] == str(record.id)
        assert (conflict["client_version"], conflict["server_version"]) == (seen, seen + 1)
        assert conflict["server"]["title"] == "Server's" and conflict["server"]["version"] == seen + 1
        db.session.expire_all()
        assert db.session.get(Patient, rex.id).name != "Half"  # nothing half-applied
        assert db.session.get(MedicalRecord, uuid.UUID(fresh["id"])) is None

        # resolve: the merged copy against the server's version
        merged = {"title": "Mine and the server's", "details": "merged"}
        resolved = client.post(f"{SYNC}/resolve", headers=family["a"], json={
            "table": "medical_records", "id": str(record.id), "version": seen + 1, "record": merged})
        assert resolved.status_code == 200, resolved.get_data(as_text=True)
        assert resolved.get_json()["record"]["title"] == "Mine and the server's"
        assert resolved.get_json()["version"] == seen + 2
        stale = client.post(f"{SYNC}/resolve", headers=family["a"], json={
            "table": "medical_records", "id": str(record.id), "version": seen + 1, "record": {"title": "Late"}})
        assert assert_problem(stale, 409, "sync_conflict")["conflicts"][0]["server_version"] == seen + 2

    def test_other_peoples_objects_are_not_found_and_roles_are_kept(self, client, family, gen_doctor,
                                                                    gen_appointment):
        tom = family["tom"]
        theirs = add_record(tom)
        note = notify(family["bob"])
        for changes in ({"patients": {"updated": [{"id": str(tom.id), "version": 1, "name": "Mine"}]}},
                        {"patients": {"deleted": [str(tom.id)]}},
                        {"medical_records": {"created": [new_record(tom.id)]}},
                        {"medical_records": {"updated": [{"id": str(theirs.id), "version": 1, "title": "x"}]}},
                        {"notifications": {"updated": [{"id": str(note.id), "read_at": iso(utcnow())}]}}):
            assert_problem(push(client, family["a"], changes, status=404), 404)
        db.session.expire_all()
        assert db.session.get(Patient, tom.id).name != "Mine" and db.session.get(Notification, note.id).read_at is None
        # a doctor of record may add to the history but not change the profile
        doctor, profile = gen_doctor()
        gen_appointment(profile, tom, next_slot(), status="confirmed")
        headers = pull_headers(client, doctor)
        assert_problem(push(client, headers, {"patients": {"updated": [
            {"id": str(tom.id), "version": 1, "name": "Doc's"}]}}, status=403), 403)
        push(client, headers, {"medical_records": {"created": [new_record(tom.id)]}})
        # a co-guardian may not archive; the primary guardian may, and again is harmless
        assert_problem(push(client, family["b"], {"patients": {"deleted": [str(family["rex"].id)]}}, status=404), 404)

    def test_marking_notifications_read(self, client, family):
        note = notify(family["alice"])
        items = push(client, family["a"], {"notifications": {"updated": [
            {"id": str(note.id), "read_at": iso(utcnow()), "title": "echoed", "_status": "updated"}]}}).get_json()
        assert items["items"][0]["status"] == "read"
        db.session.expire_all()
        assert db.session.get(Notification, note.id).read_at is not None

    def test_deleting_a_patient_archives_it(self, client, family):
        rex = family["rex"]
        changes = {"patients": {"deleted": [str(rex.id)]}}
        assert push(client, family["a"], changes).get_json()["items"][0]["status"] == "archived"
        assert push(client, family["a"], changes).get_json()["items"][0]["status"] == "unchanged"

    @pytest.mark.parametrize("changes", [
        {"pets": {"created": []}},
        {"patients": {"created": [{"id": "not-a-uuid", "name": "x", "species": "dog"}]}},
        {"patients": {"created": [{"name": "no id", "species": "dog"}]}},
        {"patients": {"created": [{"id": str(uuid.uuid4()), "name": "x", "species": "dragon"}]}},
        {"patients": {"created": [{"id": str(uuid.uuid4()), "name": "x", "species": "dog", "owner": "me"}]}},
        {"patients": {"updated": [{"id": str(uuid.uuid4()), "name": "no version"}]}},
        {"patients": {"updated": [{"id": "6f1c2f4e-8a6b-4d0e-9c53-0f3a1f2b7a11", "version": 1}] * 2}},
        {"medical_records": {"deleted": [str(uuid.uuid4())]}},
        {"vitals": {"created": [{"id": "1"}]}},
        {"messages": {"updated": [{"id": str(uuid.uuid4())}]}},
        {"notifications": {"created": [{"id": str(uuid.uuid4())}]}},
        {"patients": {"created": [new_patient(species="human", microchip_id="123456789")]}},
        {"medical_records": {"created": [new_record(uuid.uuid4(), recorded_at="2026-01-01T00:00:00")]}},
        {"patients": {"created": [new_patient() for _ in range(1001)]}},
    ])
    def test_bad_batches_are_422_and_change_nothing(self, client, family, changes):
        assert_problem(push(client, family["a"], changes, status=422), 422)
        assert db.session.scalar(select(func.count()).select_from(Patient)) == 2

    def test_bad_resolves_are_422(self, client, family):
        for body in ({"table": "vitals", "id": str(uuid.uuid4()), "version": 1, "record": {}},
                     {"table": "patients", "id": str(family["rex"].id), "version": 1, "record": {"owner": "x"}},
                     {"table": "patients", "id": str(family["rex"].id), "record": {}}):
            assert_problem(client.post(f"{SYNC}/resolve", headers=family["a"], json=body), 422)
        # A medical record's column is no patient's: the record's columns depend on the table, as the document says.
        assert_problem(client.post(f"{SYNC}/resolve", headers=family["a"], json={
            "table": "patients", "id": str(family["rex"].id), "version": 1, "record": {"kind": "note"}}), 422)
        resolve_in = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["ResolveIn"]
        records = {alternative["properties"]["table"]["enum"][0]: alternative["properties"]["record"]
                   for alternative in resolve_in["oneOf"]}
        assert records["patients"]["additionalProperties"] is False and "kind" not in records["patients"]["properties"]
        assert "kind" in records["medical_records"]["properties"]


def test_every_captured_table_has_its_triggers(app):
    names = set()
    if db.engine.dialect.name == "postgresql":
        names = set(db.session.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    else:
        names = set(db.session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    for table in capture.CAPTURED:
        assert set(capture.trigger_names(table)) <= names, table


# The invariant, on PostgreSQL ---------------------------------------------------------------------------------------

def _dsn(app):
    from sqlalchemy.engine import make_url
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _insert_record(conn, patient_id, title):
    record_id = uuid.uuid4()
    conn.execute("INSERT INTO medical_records (id, patient_id, kind, title, recorded_at, version, created_at, "
                 "updated_at) VALUES (%s, %s, 'note', %s, now(), 1, now(), now())", (record_id, patient_id, title))
    return str(record_id)


@postgres_only
def test_a_write_committed_during_a_pull_appears_in_exactly_one_later_pull(app, client, family, monkeypatch):
    rex = family["rex"]
    cursor = pull(client, family["a"])["cursor"]
    dsn = _dsn(app)
    started_before = psycopg.connect(dsn)  # begins and writes before the pull's snapshot, commits during the pull
    started_during = psycopg.connect(dsn)  # begins after the snapshot and commits during the pull too
    early = _insert_record(started_before, rex.id, "before")
    with psycopg.connect(dsn) as overtaking:  # writes after it but commits first: a higher id, committed earlier
        overtook = _insert_record(overtaking, rex.id, "overtook")
    during = {}
    original = pull_module.scopes_of

    def commit_mid_pull(actor):  # runs inside the pull, after its bound and snapshot were taken
        during["isolation"] = db.session.scalar(text("SHOW transaction_isolation"))
        during["late"] = _insert_record(started_during, rex.id, "during")
        started_during.commit()
        started_before.commit()
        return original(actor)

    monkeypatch.setattr(pull_module, "scopes_of", commit_mid_pull)
    first = pull(client, family["a"], cursor)
    monkeypatch.setattr(pull_module, "scopes_of", original)
    # the early writer was not committed when the snapshot was taken, nor the one that began during the pull
    assert ids(first, "medical_records", "created") == {overtook}
    assert during["isolation"] == "repeatable read"  # one snapshot for the bound and every row read
    second = pull(client, family["a"], first["cursor"])
    assert ids(second, "medical_records", "created") == {early, during["late"]}
    third = pull(client, family["a"], second["cursor"])
    assert not ids(third, "medical_records", "created")
    started_before.close()
    started_during.close()


@postgres_only
def test_under_concurrent_writers_every_committed_row_is_pulled_exactly_once(app, client, family):
    """Writers commit in an order unrelated to their transaction ids (each sleeps a random while between writing
    and committing) while the puller pulls in a loop; every committed record shows up in exactly one pull."""
    rex_id = family["rex"].id
    dsn = _dsn(app)
    cursor = pull(client, family["a"])["cursor"]
    committed, failures = [], []

    def writer(seed):
        chance = random.Random(seed)
        try:
            with psycopg.connect(dsn) as conn:
                for n in range(12):
                    record_id = _insert_record(conn, rex_id, f"w{seed}-{n}")
                    time.sleep(chance.uniform(0, 0.08))
                    if chance.random() < 0.15:
                        conn.rollback()  # an aborted transaction must never be pulled
                    else:
                        conn.commit()
                        committed.append(record_id)
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    seen = []
    while any(thread.is_alive() for thread in threads):
        body = pull(client, family["a"], cursor)
        cursor = body["cursor"]
        seen.extend(ids(body, "medical_records", "created"))
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    body = pull(client, family["a"], cursor)
    seen.extend(ids(body, "medical_records", "created"))
    assert not failures
    assert len(committed) > 20
    assert sorted(seen) == sorted(committed)  # each once: none lost, none twice, no aborted one


def test_the_demo_data_syncs(app, client):
    from pawmanity.demo import DEMO_PASSWORD

    app.test_cli_runner().invoke(args=["demo", "load"])
    token = client.post("/api/v1/auth/login", json={"email": "sam.owner@example.com",
                                                    "password": DEMO_PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    first = pull(client, headers)
    pets = {pet["name"]: pet for pet in first["changes"]["patients"]["created"]}
    assert "Biscuit" in pets
    readings = first["changes"]["vitals"]["created"]
    assert sum(r["measurement"] == "heart_rate" for r in readings) == 24 * 60  # a day of his collar's heart rate
    assert {r["measurement"] for r in readings} == {"heart_rate", "body_weight"}  # weights are vitals too
    record = client.post(f"/api/v1/patients/{pets['Biscuit']['id']}/records", headers=headers, json={
        "kind": "note", "title": "Ate well", "recorded_at": iso(utcnow())})
    assert record.status_code == 201, record.get_data(as_text=True)
    second = pull(client, headers, first["cursor"])
    assert ids(second, "medical_records", "created") == {record.get_json()["id"]}
    assert sum(len(second["changes"][table][kind]) for table in TABLES for kind in ("created", "updated",
                                                                                       "deleted")) == 1


@postgres_only
def test_concurrent_pushes_against_one_version_one_wins_the_rest_conflict_whole(make_app, gen_user, gen_patient,
                                                                                tokens_for):
    contenders = 10
    app = make_app()
    with app.app_context():
        owner = gen_user()
        token = tokens_for(owner)["access_token"]
        pet = gen_patient(owner)
        record = add_record(pet)
        pet_id, record_id, version = str(pet.id), str(record.id), record.version
    barrier, outcomes = threading.Barrier(contenders), []

    def run(n):
        with app.app_context():
            barrier.wait()
            response = app.test_client().post(f"{SYNC}/push", headers={"Authorization": f"Bearer {token}"}, json={
                "changes": {"medical_records": {
                    "created": [new_record(pet_id, title=f"extra {n}")],
                    "updated": [{"id": record_id, "version": version, "title": f"edit {n}"}]}}})
            outcomes.append((response.status_code, (response.get_json() or {}).get("code")))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == sorted([(200, None)] + [(409, "sync_conflict")] * (contenders - 1), key=str)
    with app.app_context():
        titles = db.session.scalars(select(MedicalRecord.title)).all()
        assert len(titles) == 2  # the original (edited once) and the winner's extra: no loser's extra
        assert db.session.get(MedicalRecord, uuid.UUID(record_id)).version == version + 1
