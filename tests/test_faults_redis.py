"""Fault suite, Redis part: against real gunicorn servers and a throwaway Redis of its own (never the shared one),
Redis is flushed, then stopped, then started again.

Shows: revoked tokens stay revoked through the flush and the outage; sign-in, registration, token checks, chat and
rate limits (in memory) keep working while Redis is down; a logged-out socket is dropped within one sweep period
even then; live delivery between server processes resumes once Redis is back. The figures are written to the
terminal.
"""

import os
import subprocess
import time
from datetime import timedelta

import pytest
import redis
import requests

from tests.live_server import free_port
from tests.support import PASSWORD
from tests.test_servers import both_servers, socket_client, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow]
SWEEP_SECONDS = 2


class ThrowawayRedis:
    """`redis-server` on a spare loopback port, without persistence, that the test may stop and start."""

    def __init__(self, log_path):
        self.port, self.log_path, self.process = free_port(), log_path, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not start:\n{self.log_path.read_text()}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)


@pytest.fixture
def throwaway_redis(tmp_path):
    server = ThrowawayRedis(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


def api(base_url, method, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    response = requests.request(method, f"{base_url}/api/v1{path}", headers=headers, timeout=10, **kwargs)
    return response, (time.monotonic() - started) * 1000


def sign_in(base_url, email, password=PASSWORD):
    response, _ = api(base_url, "POST", "/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def status(base_url, token):
    return api(base_url, "GET", "/auth/me", token)[0].status_code


def report_figures(request, line):
    """The suite's figures, on the terminal even under -q (and in the JUnit XML as a property)."""
    request.node.user_properties.append(("figures", line))
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():  # output is captured during a test
        plugins.get_plugin("terminalreporter").write_line(f"\n[fault suite] {line}")


def test_redis_flushed_then_down_then_back(request, throwaway_redis, server_env, tmp_path, gen_user, gen_patient,
                                           gen_doctor, gen_appointment):
    from pawmanity.core.database import utcnow

    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    pet = gen_patient(owner)
    appointment = gen_appointment(doctor, pet, utcnow() - timedelta(minutes=2), status="confirmed")
    env = {**server_env, "REDIS_URL": throwaway_redis.url,
           "PAWMANITY_SOCKET_REVOCATION_SWEEP_SECONDS": str(SWEEP_SECONDS),
           "PAWMANITY_RATELIMIT_STORAGE_RETRY_SECONDS": "2",
           "PAWMANITY_LOGIN_RATE_LIMIT": "20 per minute"}
    with both_servers(env, tmp_path) as (first, second):
        logged_out, kept, on_socket = (sign_in(first, owner.email) for _ in range(3))
        doctor_token = sign_in(first, doctor_user.email)["access_token"]
        consultation, _ = api(first, "POST", "/consultations", doctor_token,
                              json={"appointment_id": str(appointment.id)})
        consultation_id = consultation.json()["id"]
        doctor_events, owner_events = [], []
        doctor_socket = socket_client(first, "/chat", doctor_token, doctor_events)
        owner_socket = socket_client(second, "/chat", on_socket["access_token"], owner_events)
        owner_socket.on("session_ended", lambda data: owner_events.append(("session_ended", data)), namespace="/chat")
        try:
            figures = exercise_outage(throwaway_redis, first, second, consultation_id, owner, logged_out, kept,
                                      on_socket, doctor_token, doctor_events, owner_events)
        finally:
            for client in (doctor_socket, owner_socket):
                client.disconnect()
    report_figures(request, "/auth/me with Redis up %.0f-%.0f ms; Redis down %.1f s: /auth/me %.0f-%.0f ms, login "
                            "%.0f ms, logged-out socket dropped after %.1f s (sweep %s s); live delivery between "
                            "the servers resumed %.1f s after Redis returned" % figures)


def exercise_outage(throwaway_redis, first, second, consultation_id, owner, logged_out, kept, on_socket,
                    doctor_token, doctor_events, owner_events):
    sent = iter(range(1000))

    def say(base_url, token, text):
        response, _ = api(base_url, "POST", f"/consultations/{consultation_id}/messages", token,
                          json={"body": text, "client_id": f"fault-{next(sent)}"})
        assert response.status_code == 201, response.text

    say(second, kept["access_token"], "before")
    assert [m["body"] for m in wait_for(doctor_events, "message")] == ["before"]
    assert api(first, "POST", "/auth/logout", logged_out["access_token"])[0].status_code == 204

    # 1. Redis loses its data: the revocation holds, on both servers.
    throwaway_redis.client().flushdb()
    assert [status(base, logged_out["access_token"]) for base in (first, second)] == [401, 401]
    assert status(second, kept["access_token"]) == 200
    me_up_ms = [api(second, "GET", "/auth/me", kept["access_token"])[1] for _ in range(5)]

    # 2. Redis is down.
    throwaway_redis.stop()
    down_at = time.monotonic()
    assert [status(base, logged_out["access_token"]) for base in (first, second)] == [401, 401]
    me_ms = [api(second, "GET", "/auth/me", kept["access_token"])[1] for _ in range(5)]
    assert status(second, kept["access_token"]) == 200
    login_started = time.monotonic()
    fresh = sign_in(first, owner.email)
    login_ms = (time.monotonic() - login_started) * 1000
    registered, _ = api(second, "POST", "/auth/register", json={
        "email": f"during-outage-{os.getpid()}@example.com", "password": PASSWORD, "full_name": "Outage",
        "role": "patient"})
    assert registered.status_code == 201, registered.text
    say(second, fresh["access_token"], "during the outage")  # stored; it reaches server one's client later

    # A socket whose session ends during the outage is dropped within one sweep period.
    assert api(second, "POST", "/auth/logout", on_socket["access_token"])[0].status_code == 204
    logged_out_at = time.monotonic()
    wait_for(owner_events, "session_ended", timeout=SWEEP_SECONDS + 3)
    drop_seconds = time.monotonic() - logged_out_at
    assert drop_seconds <= SWEEP_SECONDS + 1
    assert owner_events[-1] == ("session_ended", {"code": "token_revoked"})

    # Rate limits still hold, counted in each process's memory: 429 with Retry-After, never a 500.
    codes = [api(first, "POST", "/auth/login", json={"email": owner.email, "password": "a wrong guess"})[0]
             for _ in range(25)]
    assert {r.status_code for r in codes} <= {401, 429} and codes[-1].status_code == 429
    assert int(codes[-1].headers["Retry-After"]) > 0

    # 3. Redis is back (empty): live delivery between the servers resumes, revocations still hold.
    outage_seconds = time.monotonic() - down_at
    throwaway_redis.start()
    back_at = time.monotonic()
    doctor_events.clear()
    resumed = None
    while resumed is None and time.monotonic() - back_at < 70:
        say(second, fresh["access_token"], "after")
        time.sleep(1)
        if any(event == "message" and data["body"] == "after" for event, data in doctor_events):
            resumed = time.monotonic() - back_at
    assert resumed is not None, "live delivery between the servers did not resume within 70 s"
    assert [status(base, logged_out["access_token"]) for base in (first, second)] == [401, 401]
    assert status(first, kept["access_token"]) == 200
    messages, _ = api(first, "GET", f"/consultations/{consultation_id}/messages", doctor_token)
    assert "during the outage" in [m["body"] for m in messages.json()["items"]]
    # The rate-limit counters are shared in Redis again.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        say(second, fresh["access_token"], "counted")
        if any(b"chat_message" in key for key in throwaway_redis.client().scan_iter(count=1000)):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the chat limit never went back to Redis")

    return (min(me_up_ms), max(me_up_ms), outage_seconds, min(me_ms), max(me_ms), login_ms, drop_seconds,
            SWEEP_SECONDS, resumed)
