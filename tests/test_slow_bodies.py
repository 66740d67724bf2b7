"""Slow request bodies must not hold pooled database connections: authentication returns its connection before the
body is read, so a handful of clients dribbling uploads cannot starve everyone else (against a real gunicorn)."""

import socket
import time
import uuid
from contextlib import ExitStack

import pytest
import requests

from tests.live_server import gunicorn
from tests.support import PASSWORD, postgres_only

pytestmark = [pytest.mark.slow, postgres_only]

POOL = {"PAWMANITY_DB_POOL_SIZE": "2", "PAWMANITY_DB_POOL_OVERFLOW": "0", "PAWMANITY_DB_POOL_TIMEOUT_SECONDS": "2"}


def sign_up(base_url):
    email = f"slow-{uuid.uuid4().hex[:8]}@example.com"
    assert requests.post(f"{base_url}/api/v1/auth/register", timeout=10, json={
        "email": email, "password": PASSWORD, "full_name": "Slow Uploader", "role": "patient"}).status_code == 201
    token = requests.post(f"{base_url}/api/v1/auth/login", timeout=10,
                          json={"email": email, "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def start_slow_upload(base_url, headers, patient_id):
    """Send the headers and the first bytes of a 1 MB multipart upload, then stall."""
    host, port = base_url.rsplit("//", 1)[1].split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    boundary = "slowslowslow"
    start = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"patient_id\"\r\n\r\n{patient_id}\r\n"
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
             f"Content-Type: image/png\r\n\r\n").encode()
    conn.sendall((f"POST /api/v1/uploads HTTP/1.1\r\nHost: {host}\r\n"
                  f"Authorization: {headers['Authorization']}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {len(start) + 1024 * 1024}\r\n\r\n").encode() + start)
    return conn


def test_slow_uploaders_do_not_block_other_requests(server_env, tmp_path):
    slow_clients = 6  # three times the pool
    with gunicorn({**server_env, **POOL}, tmp_path / "gunicorn.log") as base_url, ExitStack() as stack:
        headers = sign_up(base_url)
        pet = requests.post(f"{base_url}/api/v1/patients", headers=headers, timeout=10,
                            json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
        for _ in range(slow_clients):
            stack.enter_context(start_slow_upload(base_url, headers, pet["id"]))
        time.sleep(1.0)  # every slow upload is past authentication and waiting for its body

        started = time.monotonic()
        answers = [requests.get(f"{base_url}/api/v1/auth/me", headers=headers, timeout=10).status_code
                   for _ in range(5)]
        answers.append(requests.post(f"{base_url}/api/v1/patients", headers=headers, timeout=10,
                                     json={"name": "Rex", "species": "dog", "sex": "male"}).status_code)
        elapsed = time.monotonic() - started
        assert answers == [200] * 5 + [201], answers
        assert elapsed < 2.0, f"6 requests took {elapsed:.1f}s behind {slow_clients} slow uploaders"
