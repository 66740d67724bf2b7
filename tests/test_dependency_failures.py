"""A dependency that fails (database down, stalled or busy, Redis down, disk full) is a 503/507 problem with
Retry-After, the transaction is rolled back, and the log gets one line rather than a traceback per request."""

import errno
import logging
import socket
import threading
import time

import pytest
import redis
from sqlalchemy import func, select, text

from pawmanity.care.models import Upload
from pawmanity.core.extensions import db
from tests.live_server import free_port
from tests.support import PASSWORD, assert_problem, postgres_only
from tests.test_uploads import png, upload

LOGIN = "/api/v1/auth/login"


def assert_dependency_problem(response, status, code):
    body = assert_problem(response, status, code)
    assert int(response.headers["Retry-After"]) > 0
    return body


def dependency_log_lines(caplog):
    return [r for r in caplog.records if r.name == "pawmanity.dependencies"]


def test_database_refusing_connections_is_503_with_one_log_line(make_app, caplog):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    client = make_app(SQLALCHEMY_DATABASE_URI=url).test_client()
    with caplog.at_level(logging.WARNING):
        response = client.post(LOGIN, json={"email": "a@example.com", "password": PASSWORD})
    assert_dependency_problem(response, 503, "database_unavailable")
    lines = dependency_log_lines(caplog)
    assert len(lines) == 1 and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere


@pytest.fixture
def stalled_server():
    """A TCP server that accepts connections and never says a word: a database that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_stalled_database_fails_the_request_after_the_connect_timeout(make_app, stalled_server):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{stalled_server}/stalled"
    client = make_app(SQLALCHEMY_DATABASE_URI=url, DB_CONNECT_TIMEOUT_SECONDS=1).test_client()
    started = time.monotonic()
    response = client.post(LOGIN, json={"email": "a@example.com", "password": PASSWORD})
    assert_dependency_problem(response, 503, "database_unavailable")
    assert time.monotonic() - started < 10  # without a connect timeout psycopg waits for ever


@postgres_only
def test_a_slow_statement_is_cancelled_and_the_session_recovers(make_app, gen_user):
    app = make_app(DB_STATEMENT_TIMEOUT_MS=200)

    @app.get("/test-only/slow")
    def slow():
        db.session.execute(text("SELECT pg_sleep(2)"))
        return {"ok": True}

    client = app.test_client()
    started = time.monotonic()
    assert_dependency_problem(client.get("/test-only/slow"), 503, "database_unavailable")
    assert time.monotonic() - started < 1.5
    with app.app_context():
        gen_user(email="after-timeout@example.com")
    # The failed transaction was rolled back: the next request on the same app works.
    assert client.post(LOGIN, json={"email": "after-timeout@example.com", "password": PASSWORD}).status_code == 200


@postgres_only
def test_an_exhausted_pool_is_503_not_a_hang(make_app, database_url):
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 1})
    client = app.test_client()
    with app.app_context():
        held = db.engine.connect()  # the only connection, held by "another request"
        try:
            started = time.monotonic()
            response = client.post(LOGIN, json={"email": "a@example.com", "password": PASSWORD})
            assert_dependency_problem(response, 503, "database_busy")
            assert time.monotonic() - started < 5
        finally:
            held.close()
    assert client.post(LOGIN, json={"email": "a@example.com", "password": PASSWORD}).status_code == 401


def test_redis_down_is_503(make_app):
    app = make_app()
    dead_redis = redis.Redis(port=free_port(), socket_connect_timeout=1)

    @app.get("/test-only/redis")
    def uses_redis():
        dead_redis.ping()
        return {"ok": True}

    assert_dependency_problem(app.test_client().get("/test-only/redis"), 503, "cache_unavailable")


def test_a_full_disk_is_507_and_stores_no_row(client, app, auth, gen_user, gen_patient, monkeypatch, caplog):
    from pawmanity.media.storage import LocalStorage

    def disk_full(self, key, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalStorage, "put", disk_full)
    owner = gen_user()
    pet = gen_patient(owner)
    with caplog.at_level(logging.WARNING):
        response = upload(client, auth(owner), pet, png(), filename="x.png", content_type="image/png")
    assert_dependency_problem(response, 507, "storage_full")
    assert len(dependency_log_lines(caplog)) == 1
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_an_error_escaping_flask_is_still_problem_json():
    """What escapes the Flask app (its teardown runs after the response was started) must not become the
    server's HTML page. gunicorn lets a second start_response with exc_info replace unsent headers (PEP 3333)."""
    from sqlalchemy.exc import OperationalError

    from pawmanity.core.errors import ProblemOnEscape

    def app_failing_in_teardown(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    started = []

    def start_response(status, headers, exc_info=None):
        assert exc_info is not None or not started  # a second call must say why
        started.append((status, dict(headers)))

    body = b"".join(ProblemOnEscape(app_failing_in_teardown, retry_after=7)({"REQUEST_METHOD": "GET",
                                                                             "PATH_INFO": "/x"}, start_response))
    status, headers = started[-1]
    assert status.startswith("503") and headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "7"
    assert b'"database_unavailable"' in body
