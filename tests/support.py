"""Shared test helpers (fixtures live in conftest.py)."""

import os

import pytest

SERVER_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")


def _redis_url_for_this_worker(url):
    """Each pytest-xdist worker gets its own Redis database: the limiter's reset clears every counter of the
    database it is given, which would otherwise reach into another worker's test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if not url or worker == "gw0":
        return url
    base, _, number = url.rpartition("/")
    return f"{base}/{(int(number or 0) + int(worker[2:])) % 16}"


REDIS_URL = _redis_url_for_this_worker(os.environ.get("REDIS_URL"))
ON_POSTGRES = bool(SERVER_DATABASE_URL)
PASSWORD = "a sound passphrase"

postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (set TEST_DATABASE_URL)")
redis_only = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (set REDIS_URL)")


def field_key_env(instance_dir):
    """A production process's key setting: the key file that the test's own apps (INSTANCE_DIR=instance_dir)
    generate and use, so the server and the test read each other's encrypted identifiers."""
    from pawmanity.core.encryption.fields import DEVELOPMENT_KEY_FILE, ensure_development_key_file

    return {"PAWMANITY_FIELD_KEY_FILE": ensure_development_key_file(os.path.join(instance_dir, DEVELOPMENT_KEY_FILE))}


def assert_problem(response, status, code=None):
    """Every error has one shape: RFC 9457 problem details with our machine-readable code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("urn:pawmanity:problem:")
    if code is not None:
        assert body["code"] == code, body
    return body


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def next_slot(days=2, hour=10, minute=0):
    """A UTC time `days` from now at hour:minute: inside the default 08:00-18:00 UTC hours, on the 30-minute grid."""
    from datetime import datetime, timedelta, timezone

    day = (datetime.now(timezone.utc) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")
