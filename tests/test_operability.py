"""What an operator and an integrator meet first: the CLI from a checkout, one-line configuration errors, request
ids and one JSON access line per request."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import assert_problem, bearer, field_key_env

ROOT = Path(__file__).resolve().parent.parent
LONG_SECRET = "a-production-secret-for-this-test-only-0123456789"


def flask_cli(*args, tmp_path, **env):
    base = {key: value for key, value in os.environ.items()
            if key not in ("SECRET_KEY", "JWT_SECRET_KEY", "PAWMANITY_CONFIG", "FLASK_APP", "DATABASE_URL",
                           "REDIS_URL", "MONGO_URI")}
    return subprocess.run([sys.executable, "-m", "flask", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**base, "PAWMANITY_INSTANCE_DIR": str(tmp_path), **env})


def error_lines(result):
    # flask-migrate's alembic may log INFO lines first; what matters is that no traceback is printed.
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO")]


@pytest.mark.slow
def test_the_cli_works_from_a_checkout_with_the_embedded_defaults(tmp_path):
    result = flask_cli("--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("create-admin", "demo", "audit", "ai", "db"):
        assert f"  {command}" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("env", "message"), [
    ({}, "Set SECRET_KEY for production"),
    ({"SECRET_KEY": "too-short"}, "SECRET_KEY must be at least 32 bytes"),
    ({"SECRET_KEY": LONG_SECRET, "DATABASE_URL": "mysql://db/clinic"}, "DATABASE_URL must be a PostgreSQL"),
    ({"SECRET_KEY": LONG_SECRET},
     "Set PAWMANITY_FIELD_KEYS and PAWMANITY_BLIND_INDEX_KEY, or PAWMANITY_FIELD_KEY_FILE"),
    ({"SECRET_KEY": LONG_SECRET, "PAWMANITY_FIELD_KEYS": "k1:dG9vIHNob3J0", "PAWMANITY_BLIND_INDEX_KEY": "x"},
     "key 'k1' in PAWMANITY_FIELD_KEYS must be 32 random bytes in base64"),
])
def test_production_refuses_bad_configuration_in_one_line(tmp_path, env, message):
    result = flask_cli("--help", tmp_path=tmp_path, PAWMANITY_CONFIG="production", **env)
    assert result.returncode != 0
    assert error_lines(result) == [error_lines(result)[0]] and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_unreachable_database_is_one_line(tmp_path):
    result = flask_cli("db", "upgrade", tmp_path=tmp_path, PAWMANITY_CONFIG="production", SECRET_KEY=LONG_SECRET,
                       DATABASE_URL="postgresql://nobody:secret@127.0.0.1:9/none", **field_key_env(tmp_path))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "cannot use the database at" in lines[0] and "Connection refused" in lines[0], lines
    assert "secret" not in lines[0]  # the password is not printed


def test_every_response_carries_a_request_id_that_problems_repeat(client):
    made = client.get("/api/v1/health")
    assert len(made.headers["X-Request-ID"]) == 32
    offered = client.get("/api/v1/nowhere", headers={"X-Request-ID": "lb-7f3a:42"})
    assert offered.headers["X-Request-ID"] == "lb-7f3a:42"
    assert assert_problem(offered, 404)["request_id"] == "lb-7f3a:42"
    forged = client.get("/api/v1/health", headers={"X-Request-ID": 'x" injected=1'})
    assert forged.headers["X-Request-ID"] != 'x" injected=1' and len(forged.headers["X-Request-ID"]) == 32


@pytest.fixture
def access_lines(caplog):
    logger = logging.getLogger("pawmanity.access")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="pawmanity.access")
    yield lambda: [json.loads(record.getMessage()) for record in caplog.records if record.name == logger.name]
    logger.removeHandler(caplog.handler)


def test_one_json_access_line_per_request_names_the_user(client, gen_user, tokens_for, access_lines):
    alice = gen_user(role="patient")
    response = client.get("/api/v1/auth/me", headers=bearer(tokens_for(alice)["access_token"]))
    client.get("/api/v1/health")
    first, second = access_lines()[-2:]
    assert first == {"event": "request", "method": "GET", "path": "/api/v1/auth/me", "status": 200,
                     "duration_ms": first["duration_ms"], "user_id": str(alice.id),
                     "request_id": response.headers["X-Request-ID"]}
    assert first["duration_ms"] >= 0
    assert second["user_id"] is None and second["status"] == 200


def test_the_front_page_links_to_the_docs_and_pages(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    for link in ('href="/api/docs"', 'href="/chat"', 'href="/video"', 'href="/api/v1/health"'):
        assert link in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Demo accounts" not in html


def test_the_front_page_lists_demo_accounts_once_loaded_but_not_in_production(make_app):
    from pawmanity import demo
    from pawmanity.identity.actor import Actor

    app = make_app()
    with app.app_context():
        demo.load(actor=Actor(role="system", ip="test"))
    html = app.test_client().get("/").get_data(as_text=True)
    assert "dr.rivera@happypaws.example" in html and demo.DEMO_PASSWORD in html
    production = make_app(REQUIRE_REAL_SECRETS=True).test_client().get("/").get_data(as_text=True)
    assert "dr.rivera@happypaws.example" not in production and demo.DEMO_PASSWORD not in production


def test_rest_answers_cors_for_the_configured_origins_only(make_app):
    client = make_app(SOCKETIO_CORS_ORIGINS=("https://app.clinic.example",)).test_client()
    preflight = client.options("/api/v1/auth/me", headers={
        "Origin": "https://app.clinic.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.clinic.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    answer = client.get("/api/v1/health", headers={"Origin": "https://app.clinic.example"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.clinic.example"
    assert "X-Request-ID" in answer.headers["Access-Control-Expose-Headers"]
    stranger = client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_without_configured_origins_there_is_no_cors(client):
    answer = client.get("/api/v1/health", headers={"Origin": "https://app.clinic.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers
