"""The audit trail: what is recorded, that it cannot be edited, and that tampering is detected."""

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from pawmanity.audit import trail
from pawmanity.audit.models import AuditEvent
from pawmanity.core.extensions import db
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import User
from tests.support import PASSWORD, assert_problem, bearer, postgres_only


def events(action=None):
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return db.session.scalars(query).all()


def test_successful_and_failed_sign_ins_are_recorded(client, gen_user):
    user = gen_user(email="dana@example.com")
    client.post("/api/v1/auth/login", json={"email": "dana@example.com", "password": PASSWORD},
                environ_base={"REMOTE_ADDR": "203.0.113.7"})
    client.post("/api/v1/auth/login", json={"email": "dana@example.com", "password": "wrong password"})
    client.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": "wrong password"})
    success, wrong, unknown = events("auth.login")
    assert (success.outcome, success.actor_id, success.actor_role, success.ip) == \
        ("success", user.id, "patient", "203.0.113.7")
    assert (wrong.outcome, wrong.actor_id, wrong.detail["reason"]) == ("failure", user.id, "wrong_password")
    # The address only as its blind index (addresses are stored encrypted): attempts on it still correlate.
    assert (unknown.outcome, unknown.actor_id, unknown.detail) == \
        ("failure", None, {"reason": "unknown_email", "email_index": User.email.blind_index_of("ghost@example.com")})
    assert all(event.occurred_at.tzinfo is not None for event in (success, wrong, unknown))


def test_sign_out_and_refresh_reuse_are_recorded(client, gen_user, tokens_for):
    user = gen_user()
    pair = tokens_for(user)
    client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    reuse, = events("auth.refresh_reuse")
    assert reuse.outcome == "denied" and reuse.actor_id == user.id
    other = tokens_for(user)
    client.post("/api/v1/auth/logout", headers=bearer(other["access_token"]))
    logout, = events("auth.logout")
    assert logout.actor_id == user.id and logout.object_type == "session"


def test_admin_lists_the_trail_newest_first_with_filters(client, gen_user, auth):
    admin = gen_user(role="admin")
    for _ in range(3):
        client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong password"})
    body = client.get("/api/v1/admin/audit?action=auth.login&per_page=2", headers=auth(admin)).get_json()
    assert body["total"] == 3 and len(body["items"]) == 2
    assert body["items"][0]["id"] > body["items"][1]["id"]
    assert body["items"][0]["occurred_at"].endswith("Z")
    assert_problem(client.get("/api/v1/admin/audit?from=2026-01-01T00:00:00", headers=auth(admin)), 422)
    ranged = client.get("/api/v1/admin/audit?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00%2B05:30",
                        headers=auth(admin)).get_json()
    assert ranged["total"] == 0


def test_chain_links_every_row(app):
    actor = Actor(role="system")
    for n in range(5):
        trail.record("test.event", actor, object_type="thing", object_id=n)
    db.session.commit()
    rows = events("test.event")
    assert rows[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(rows, rows[1:]))
    assert trail.verify_chain() == (5, None, None)


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"])
def test_the_database_refuses_to_edit_or_delete_audit_rows(app, statement):
    _assert_refused(statement)


@postgres_only
def test_the_database_refuses_to_truncate_the_audit_trail(app):
    _assert_refused("TRUNCATE audit_events")


def _assert_refused(statement):
    trail.record("test.event", Actor(role="system"), outcome="failure")
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert [event.outcome for event in events()] == ["failure"]


def tamper(sql):
    """Edit audit rows the way an attacker with database access would: around the append-only guard."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            conn.execute(text(sql))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text(sql))


@pytest.mark.parametrize("sql, reason", [
    ("UPDATE audit_events SET outcome = 'success' WHERE id = 2", "altered"),
    ("DELETE FROM audit_events WHERE id = 2", "removed"),
])
def test_verify_command_detects_tampering(app, sql, reason):
    for n in range(3):
        trail.record("auth.login", Actor(role="system"), outcome="failure", object_id=n)
    db.session.commit()
    runner = app.test_cli_runner()
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0 and "3 rows verified" in intact.output
    db.session.remove()
    tamper(sql)
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output and reason in broken.output


@postgres_only
def test_concurrent_appends_keep_one_unbroken_chain(make_app):
    app = make_app()
    errors = []

    def append_many(worker):
        try:
            with app.app_context():
                for n in range(10):
                    trail.record("test.concurrent", Actor(role="system"), object_id=f"{worker}-{n}")
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # reported below; the assertion names it
            errors.append(error)

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with app.app_context():
        assert trail.verify_chain() == (80, None, None)


def test_a_list_read_is_one_event_naming_what_it_returned(client, gen_user, gen_patient, auth):
    owner = gen_user(role="patient")
    for _ in range(3):
        gen_patient(owner)
    headers = auth(owner)
    before = len(events())
    listed = client.get("/api/v1/patients?per_page=2", headers=headers).get_json()["items"]
    assert len(listed) == 2
    assert [(e.action, e.actor_id, e.detail["ids"]) for e in events()[before:]] == [
        ("patient.list", owner.id, [patient["id"] for patient in listed])]


@postgres_only
def test_concurrent_list_reads_keep_one_unbroken_chain(app, gen_user, gen_patient, auth):
    owner = gen_user(role="patient")
    gen_patient(owner)
    headers = auth(owner)
    statuses, errors = [], []

    def read_many():
        try:
            client = app.test_client()
            for _ in range(5):
                statuses.append(client.get("/api/v1/patients", headers=headers).status_code)
        except Exception as error:  # reported below; the assertion names it
            errors.append(error)

    threads = [threading.Thread(target=read_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and statuses == [200] * 40
    db.session.expire_all()
    assert len(events("patient.list")) == 40
    checked, broken, reason = trail.verify_chain()
    assert (broken, reason) == (None, None) and checked == len(events())
