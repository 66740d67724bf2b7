"""The production ways of serving: gunicorn's gevent worker (default) and the opt-in eventlet mode.

Each test starts a real server process on a free loopback port against the test database, then talks HTTP and
Socket.IO (WebSocket transport) to it.
"""

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests
import socketio as socketio_client

from tests.live_server import ROOT, free_port, gunicorn, running
from tests.support import PASSWORD, REDIS_URL, redis_only

pytestmark = pytest.mark.slow


def exercise(base_url, tmp_path):
    """Register, sign in, read /auth/me over HTTP; connect over WebSocket with and without a token."""
    email = f"server-{os.getpid()}-{time.monotonic_ns()}@example.com"
    registered = requests.post(f"{base_url}/api/v1/auth/register", timeout=10, json={
        "email": email, "password": PASSWORD, "full_name": "Server Test", "role": "patient"})
    assert registered.status_code == 201, registered.text
    tokens = requests.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                           timeout=10).json()
    me = requests.get(f"{base_url}/api/v1/auth/me", timeout=10,
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == email
    assert requests.get(f"{base_url}/api/v1/ready", timeout=10).json()["status"] == "ready"

    client = socketio_client.Client(reconnection=False)
    client.connect(base_url, auth={"token": tokens["access_token"]}, transports=["websocket"], wait_timeout=10)
    assert client.connected and client.transport() == "websocket"
    client.disconnect()

    refused = socketio_client.Client(reconnection=False)
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        refused.connect(base_url, auth={"token": "forged"}, transports=["websocket"], wait_timeout=10)


def test_gunicorn_gevent_worker(server_env, tmp_path):
    with gunicorn(server_env, tmp_path / "gunicorn.log") as base_url:
        exercise(base_url, tmp_path)


def test_eventlet_opt_in(server_env, tmp_path):
    port = free_port()
    env = {**server_env, "PAWMANITY_ASYNC_MODE": "eventlet", "PORT": str(port)}
    with running([sys.executable, "wsgi.py"], env, port, tmp_path / "eventlet.log") as base_url:
        exercise(base_url, tmp_path)


@redis_only
def test_celery_worker_runs_tasks_sent_through_the_redis_broker(server_env, tmp_path, make_app):
    from datetime import timedelta

    from sqlalchemy import select

    from pawmanity.core.database import utcnow
    from pawmanity.core.extensions import db
    from pawmanity.identity.models import RevokedToken
    from pawmanity.identity.tasks import purge_expired_tokens

    app = make_app(SQLALCHEMY_DATABASE_URI=server_env["DATABASE_URL"], REDIS_URL=REDIS_URL,
                   CELERY={"broker_url": REDIS_URL, "task_always_eager": False, "task_ignore_result": True})
    command = [sys.executable, "-m", "celery", "-A", "pawmanity.worker", "worker", "-P", "solo", "--loglevel=info"]
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with app.app_context():
            db.session.add(RevokedToken(key="jti:expired-long-ago", expires_at=utcnow() - timedelta(days=30)))
            db.session.commit()
            purge_expired_tokens.delay()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                db.session.rollback()
                if db.session.scalar(select(RevokedToken.key)) is None:
                    break
                time.sleep(0.3)
            else:
                raise AssertionError(f"the worker never ran the task:\n{log_path.read_text()}")
    finally:
        worker.terminate()
        worker.wait(timeout=15)
    assert "purge_expired_tokens" in log_path.read_text()


@contextmanager
def both_servers(server_env, tmp_path):
    with gunicorn(server_env, tmp_path / "server-a.log") as first, \
            gunicorn(server_env, tmp_path / "server-b.log") as second:
        yield first, second


def socket_client(base_url, namespace, token, events):
    client = socketio_client.Client(reconnection=False)
    for name in ("message", "notification"):
        client.on(name, lambda data, name=name: events.append((name, data)), namespace=namespace)
    client.connect(base_url, namespaces=[namespace], auth={"token": token}, transports=["websocket"],
                   wait_timeout=10)
    return client


def wait_for(events, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [data for event, data in events if event == name]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {name!r} event within {timeout} s; got {events}")


@redis_only
def test_two_server_processes_share_chat_and_a_worker_reaches_clients(
        server_env, tmp_path, make_app, gen_user, gen_patient, gen_doctor, gen_appointment):
    from datetime import timedelta

    from pawmanity.core.database import utcnow

    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    pet = gen_patient(owner)
    appointment = gen_appointment(doctor, pet, utcnow() - timedelta(minutes=2), status="confirmed")
    gen_appointment(doctor, pet, utcnow() + timedelta(minutes=40), status="confirmed")  # due a 1 h reminder
    appointment_id, emails = str(appointment.id), (owner.email, doctor_user.email)

    with both_servers(server_env, tmp_path) as (first, second):
        owner_token, doctor_token = (
            requests.post(f"{first}/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                          timeout=10).json()["access_token"] for email in emails)
        consultation = requests.post(f"{first}/api/v1/consultations", json={"appointment_id": appointment_id},
                                     headers={"Authorization": f"Bearer {doctor_token}"}, timeout=10).json()
        doctor_events, owner_events = [], []
        doctor_socket = socket_client(first, "/chat", doctor_token, doctor_events)
        owner_socket = socket_client(second, "/chat", owner_token, owner_events)
        for client in (doctor_socket, owner_socket):
            assert client.call("join", {"consultation_id": consultation["id"]}, namespace="/chat",
                               timeout=10)["ok"]
        ack = owner_socket.call("message", {"consultation_id": consultation["id"], "body": "Across processes",
                                            "client_id": "x-1"}, namespace="/chat", timeout=10)
        assert ack["ok"]
        assert [m["body"] for m in wait_for(doctor_events, "message")] == ["Across processes"]

        # A Celery worker (send-only Socket.IO) emits a reminder notification; a client of server two hears it.
        live_events = []
        notifications = socket_client(second, "/notifications", owner_token, live_events)
        worker_log = tmp_path / "worker.log"
        with open(worker_log, "wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "pawmanity.worker", "worker", "-P",
                                       "solo", "--loglevel=info"], cwd=ROOT, env=server_env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            app = make_app(SQLALCHEMY_DATABASE_URI=server_env["DATABASE_URL"], REDIS_URL=REDIS_URL, CELERY={
                "broker_url": REDIS_URL, "task_always_eager": False, "task_ignore_result": True})
            with app.app_context():
                from pawmanity.appointments.tasks import send_due_reminders

                send_due_reminders.delay()
            kinds = [n["kind"] for n in wait_for(live_events, "notification", timeout=30)]
            assert kinds == ["reminder.1h"], worker_log.read_text()
        finally:
            worker.terminate()
            worker.wait(timeout=15)
            for client in (doctor_socket, owner_socket, notifications):
                client.disconnect()
