"""The audit trail: what is recorded, that it cannot be edited, and that tampering is detected."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from pawmanity.audit import trail
from pawmanity.audit.models import AuditEvent
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import User
from tests.support import ON_POSTGRES, PASSWORD, assert_problem, bearer, postgres_only


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


@postgres_only  # SQLite seals at commit
def test_the_admin_list_shows_rows_waiting_for_the_chainer_as_unsealed(client, gen_user, auth):
    admin = gen_user(role="admin")
    client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong password"})
    [waiting] = client.get("/api/v1/admin/audit?action=auth.login", headers=auth(admin)).get_json()["items"]
    assert waiting["chain_position"] is None and waiting["hash"] is None and waiting["prev_hash"] is None
    chain()
    [sealed] = client.get("/api/v1/admin/audit?action=auth.login", headers=auth(admin)).get_json()["items"]
    assert sealed["chain_position"] >= 1 and len(sealed["hash"]) == len(sealed["prev_hash"]) == 64


def chain(action=None):
    """Seal what is waiting (tests run without the after-commit chainer); the rows in chain order."""
    trail.chain_pending(wait=True)
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.chain_position)
    if action:
        query = query.where(AuditEvent.action == action)
    return db.session.scalars(query).all()


def test_chain_links_every_row(app):
    actor = Actor(role="system")
    for n in range(5):
        trail.record("test.event", actor, object_type="thing", object_id=n)
    db.session.commit()
    rows = chain("test.event")
    assert [row.chain_position for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(rows, rows[1:]))
    assert trail.verify_chain() == (5, None, None, 0, None)


@postgres_only
def test_a_request_appends_its_event_in_one_insert_without_lock_or_read(client, gen_user, gen_patient, auth):
    owner = gen_user(role="patient")
    gen_patient(owner)
    headers = auth(owner)
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/api/v1/patients", headers=headers).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    audit = [s for s in statements if "audit_events" in s or "advisory" in s]
    assert len(audit) == 1 and audit[0].startswith("INSERT INTO audit_events") and "RETURNING" not in audit[0]
    [row] = events("patient.list")
    assert (row.chain_position, row.prev_hash, row.hash) == (None, None, None)
    assert [row.id for row in chain("patient.list")] == [row.id]


@postgres_only
def test_the_chainer_seals_soon_after_a_commit(make_app):
    app = make_app(AUDIT_CHAIN_AFTER_COMMIT=True)
    with app.app_context():
        trail.record("test.event", Actor(role="system"))
        db.session.commit()  # threading mode: the follow-up runs at once
        [row] = events()
        assert row.chain_position == 1 and row.hash == trail.event_hash(row)


def test_commits_during_a_chainer_round_coalesce_into_one_more_round(app, monkeypatch):
    rounds = []

    def chain_pending(**_):
        rounds.append(len(rounds))
        if len(rounds) == 1:  # a commit while this round runs: it asks for another round, it does not start one
            trail.request_chaining()
            trail.request_chaining()
        return 0

    monkeypatch.setattr(trail, "chain_pending", chain_pending)
    trail.request_chaining()
    assert rounds == [0, 1] and not trail._chaining.running


def test_a_chainer_gives_way_to_a_busy_lock_a_few_times_then_leaves_it_to_the_holder(app, monkeypatch):
    attempts = []

    def busy(**_):
        attempts.append(1)
        raise trail.ChainerBusy

    monkeypatch.setattr(trail, "chain_pending", busy)
    monkeypatch.setattr(trail, "BUSY_PAUSE_SECONDS", 0)
    trail.request_chaining()
    assert len(attempts) == trail.BUSY_RETRIES + 1 and not trail._chaining.running


def test_a_database_lost_after_the_commit_postpones_sealing_in_one_line(app, monkeypatch, caplog):
    """The fault test restarts PostgreSQL under writers: a chainer that meets the outage leaves the stored events to
    the next chainer, saying so in one warning, not a traceback; a bug of its own keeps its traceback."""
    def database_gone(**_):
        raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(trail, "chain_pending", database_gone)
    with caplog.at_level("WARNING", logger=trail.log.name):
        trail.request_chaining()
    assert not trail._chaining.running
    [line] = [record for record in caplog.records if record.name == trail.log.name]
    assert "sealing postponed, database unavailable" in line.getMessage() and line.exc_info is None

    def a_bug(**_):
        raise KeyError("hash")

    monkeypatch.setattr(trail, "chain_pending", a_bug)
    caplog.clear()
    with caplog.at_level("ERROR"):
        trail.request_chaining()  # a follow-up's failure is logged, never raised into a request
    assert not trail._chaining.running
    assert any(record.exc_info and record.exc_info[0] is KeyError for record in caplog.records)


def test_rows_left_unsealed_too_long_are_reported(app):
    trail.record("test.event", Actor(role="system"))
    db.session.commit()
    chain()
    # As a process that died between its commit and its chainer leaves them (SQLite seals at commit: simulated).
    for minutes in (10, 0):
        db.session.execute(insert(AuditEvent), {"occurred_at": utcnow() - timedelta(minutes=minutes),
                                                "action": "test.orphan", "outcome": "success"})
    db.session.commit()
    old, recent = events("test.orphan")
    assert trail.verify_chain() == (1, None, None, 2, old.id)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"STALE: row {old.id}" in result.output
    if ON_POSTGRES:  # the chainer seals them too; then nothing is stale
        chain()
        assert trail.verify_chain() == (3, None, None, 0, None)


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"])
def test_the_database_refuses_to_edit_or_delete_audit_rows(app, statement):
    _assert_refused(statement)


@postgres_only
@pytest.mark.parametrize("statement", [
    # sealing and editing in one go
    "UPDATE audit_events SET chain_position = 7, prev_hash = 'a', hash = 'b', outcome = 'success'",
    "UPDATE audit_events SET chain_position = 7, prev_hash = 'a', hash = 'b', detail = '{\"x\": 1}'",
    # half a seal
    "UPDATE audit_events SET chain_position = 7",
])
def test_sealing_is_the_only_update_the_database_allows(app, statement):
    _assert_refused(statement)


@postgres_only
def test_the_database_refuses_to_reseal_a_sealed_row(app):
    trail.record("test.event", Actor(role="system"), outcome="failure")
    db.session.commit()
    chain()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("UPDATE audit_events SET chain_position = 2, prev_hash = 'a', hash = 'b'"))
    db.session.rollback()


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
    ("UPDATE audit_events SET outcome = 'success' WHERE chain_position = 2", "altered"),
    ("DELETE FROM audit_events WHERE chain_position = 2", "removed"),
    # A sealed row moved to another place in the chain, keeping its hashes.
    ("UPDATE audit_events SET chain_position = chain_position + 100 WHERE chain_position = 2", "removed"),
])
def test_verify_command_detects_tampering(app, sql, reason):
    for n in range(3):
        trail.record("auth.login", Actor(role="system"), outcome="failure", object_id=n)
    db.session.commit()
    chain()
    runner = app.test_cli_runner()
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0 and "3 rows verified" in intact.output
    db.session.remove()
    tamper(sql)
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output and reason in broken.output


@postgres_only
def test_concurrent_appends_and_chainers_seal_every_committed_event_exactly_once(make_app):
    """Writers on their own connections, every third transaction rolled back, while chainers (as in other processes,
    each on its own connection) race for the chain: afterwards every committed event has exactly one place."""
    app = make_app(AUDIT_CHAIN_AFTER_COMMIT=True)
    errors, committed, rolled_back = [], [], []
    writing = threading.Event()
    writing.set()

    def append_many(worker):
        try:
            with app.app_context():
                for n in range(15):
                    name = f"{worker}-{n}"
                    trail.record("test.concurrent", Actor(role="system"), object_id=name)
                    trail.record("test.concurrent", Actor(role="system"), object_id=f"{name}-second")
                    if n % 3 == 2:
                        db.session.rollback()
                        rolled_back.append(name)
                    else:
                        db.session.commit()  # and the after-commit chainer, coalesced within this process
                        committed.append(name)
                db.session.remove()
        except Exception as error:  # reported below; the assertion names it
            errors.append(error)

    def chain_while_writing():
        try:
            with app.app_context():
                while writing.is_set():
                    try:
                        trail.chain_pending(batch_size=3)
                    except trail.ChainerBusy:
                        pass
        except Exception as error:
            errors.append(error)

    chainers = [threading.Thread(target=chain_while_writing) for _ in range(3)]
    writers = [threading.Thread(target=append_many, args=(w,)) for w in range(8)]
    for thread in chainers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in chainers:
        thread.join()
    assert errors == []
    with app.app_context():
        trail.chain_pending(wait=True)
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "test.concurrent")).all()
        names = sorted(row.object_id for row in rows)
        assert names == sorted([name for name in committed] + [f"{name}-second" for name in committed])
        assert not set(rolled_back) & set(names)
        assert sorted(row.chain_position for row in rows) == list(range(1, len(rows) + 1))
        assert trail.verify_chain() == (2 * len(committed), None, None, 0, None)


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
    assert len(chain("patient.list")) == 40
    assert trail.verify_chain() == (len(events()), None, None, 0, None)
