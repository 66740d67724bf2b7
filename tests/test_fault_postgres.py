"""Fault suite, PostgreSQL part: a throwaway cluster of our own (never the shared one) and a real gunicorn server.

- PostgreSQL killed (immediate stop, as in a crash) and restarted under 20 writing clients: no acknowledged write is
  lost, and during the outage the clients get only problem+json 503s with Retry-After, never a 500 or HTML.
- The gunicorn worker killed in the middle of uploads: no row without its stored file, no row for an upload that
  was never acknowledged, and the respawned worker serves again.

Run alone with `pytest -m fault`. Needs PostgreSQL's pg_createcluster (Debian's postgresql-common) and root or the
postgres user; skipped otherwise. Figures are printed (-s) and logged.
"""

import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from PIL import Image

from tests.conftest import migrate_to_head
from tests.live_server import free_port, gunicorn
from tests.support import PASSWORD, field_key_env

pytestmark = [
    pytest.mark.fault, pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("pg_createcluster") or os.geteuid() != 0,
                       reason="needs pg_createcluster and root to make a throwaway PostgreSQL cluster"),
]
log = logging.getLogger(__name__)
PG_VERSION = os.environ.get("PAWMANITY_FAULT_PG_VERSION", "15")
WRITERS = 20


def pg(*args, timeout=120):
    subprocess.run(args, check=True, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL cluster of this test module on a spare port, dropped at the end whatever happens."""
    name, port = f"pawfault{os.getpid()}", free_port()
    pg("pg_createcluster", PG_VERSION, name, "-p", str(port), "--start", "--", "-A", "trust")
    try:
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE pawmanity_fault")
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/pawmanity_fault"
        migrate_to_head(url)
        yield {"name": name, "port": port, "url": url,
               "dsn": f"postgresql://postgres@127.0.0.1:{port}/pawmanity_fault"}
    finally:
        subprocess.run(["pg_dropcluster", PG_VERSION, name, "--stop"], timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ctl(cluster, action, *extra):
    pg("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, cluster["name"], action, *extra)


@pytest.fixture
def server_env_for(tmp_path):
    def build(cluster, **extra):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("PAWMANITY_", "FLASK_")) and key not in ("REDIS_URL", "MONGO_URI")}
        env.update(
            PAWMANITY_CONFIG="production",
            DATABASE_URL=cluster["url"],
            SECRET_KEY="a-production-secret-for-fault-tests-0123456789",
            PAWMANITY_INSTANCE_DIR=str(tmp_path / "instance"),
            PAWMANITY_UPLOAD_DIR=str(tmp_path / "uploads"),
            PAWMANITY_ARGON2_MEMORY_KIB="1024",
            PAWMANITY_ARGON2_TIME_COST="1",
            PAWMANITY_LOGIN_RATE_LIMIT="10000 per minute",
            PAWMANITY_REGISTER_RATE_LIMIT="10000 per minute",  # every writer signs up from 127.0.0.1
            PAWMANITY_DEPENDENCY_RETRY_AFTER_SECONDS="1",
            PAWMANITY_MFA_REQUIRED="false",
            **field_key_env(tmp_path / "instance"),
            **extra,
        )
        return env

    return build


def sign_up(base_url, label):
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    registered = requests.post(f"{base_url}/api/v1/auth/register", timeout=30, json={
        "email": email, "password": PASSWORD, "full_name": "Fault Test", "role": "patient"})
    assert registered.status_code == 201, registered.text
    token = requests.post(f"{base_url}/api/v1/auth/login", timeout=30,
                          json={"email": email, "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def wait_ready(base_url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/api/v1/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # the worker is being respawned
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready again")


class Writer(threading.Thread):
    """Creates patients in a loop; remembers what was acknowledged and every answer that was not a 201."""

    def __init__(self, base_url, headers, number, stop):
        super().__init__(daemon=True)
        self.base_url, self.headers, self.number, self.stop = base_url, headers, number, stop
        self.acknowledged, self.refusals, self.bad = [], [], []

    def run(self):
        http = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            name = f"w{self.number}-{n}"
            try:
                response = http.post(f"{self.base_url}/api/v1/patients", headers=self.headers, timeout=15,
                                     json={"name": name, "species": "dog", "sex": "male"})
            except requests.RequestException as error:
                self.bad.append((time.monotonic(), f"no answer: {type(error).__name__}"))
                continue
            if response.status_code == 201:
                self.acknowledged.append(response.json()["id"])
            elif (response.status_code == 503 and response.headers.get("Content-Type") == "application/problem+json"
                  and response.headers.get("Retry-After")):
                self.refusals.append(time.monotonic())
                time.sleep(0.2)
            else:
                self.bad.append((time.monotonic(), f"{response.status_code} {response.headers.get('Content-Type')} "
                                                   f"{response.text[:120]}"))


def test_postgres_restart_under_20_writers_loses_no_acknowledged_write(cluster, server_env_for, tmp_path):
    env = server_env_for(cluster, PAWMANITY_DB_CONNECT_TIMEOUT_SECONDS="2")
    with gunicorn(env, tmp_path / "gunicorn.log") as base_url:
        accounts = [sign_up(base_url, f"writer{i}") for i in range(WRITERS)]
        stop = threading.Event()
        writers = [Writer(base_url, headers, i, stop) for i, headers in enumerate(accounts)]
        for writer in writers:
            writer.start()
        time.sleep(3)
        outage_started = time.monotonic()
        ctl(cluster, "stop", "-m", "immediate")  # a crash: no checkpoint, connections cut
        time.sleep(3)
        ctl(cluster, "start")
        database_back = time.monotonic()
        time.sleep(5)
        stop.set()
        for writer in writers:
            writer.join(timeout=30)

    acknowledged = [patient_id for writer in writers for patient_id in writer.acknowledged]
    refusals = sorted(moment for writer in writers for moment in writer.refusals)
    bad = [entry for writer in writers for entry in writer.bad]
    with psycopg.connect(cluster["dsn"]) as conn:
        stored = {str(row[0]) for row in conn.execute("SELECT id FROM patients WHERE species = 'dog'")}
    lost = [patient_id for patient_id in acknowledged if patient_id not in stored]
    late_refusals = [moment for moment in refusals if moment > database_back + 2]
    figures = (f"{WRITERS} writers: {len(acknowledged)} writes acknowledged, {len(lost)} lost, "
               f"{len(stored) - len(acknowledged)} stored without acknowledgement, {len(refusals)} 503s "
               f"(first {refusals[0] - outage_started if refusals else 0:.1f}s after the stop, last "
               f"{refusals[-1] - database_back if refusals else 0:.1f}s after the start), {len(bad)} other answers")
    log.warning("fault figures: %s", figures)
    print("\n" + figures)
    log_text = (tmp_path / "gunicorn.log").read_text(errors="replace")
    assert not lost, figures
    assert not bad, (figures, bad[:5])
    assert refusals, "the outage was not noticed: the test did not test anything"
    assert not late_refusals, figures
    assert all(writer.acknowledged for writer in writers)
    assert "Traceback" not in log_text, log_text[-3000:]


def png_bytes(side=1800):
    image = Image.effect_noise((side, side), 64).convert("RGB")  # noise: slow to clean and to compress
    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


def worker_pid(master_pid):
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    assert children, "gunicorn has no worker"
    return int(children[0])


def gunicorn_master(port):
    # The server fixture runs `python -m gunicorn ... -b 127.0.0.1:<port>`; find it by its bind argument.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"gunicorn" in b" ".join(command) and f"127.0.0.1:{port}".encode() in command:
                if int((entry / "stat").read_text().split()[3]) == os.getpid():
                    return int(entry.name)
    raise AssertionError("gunicorn master not found")


@contextmanager
def raw_upload(base_url, headers, patient_id, data, *, send_fraction=1.0):
    host, port = base_url.rsplit("//", 1)[1].split(":")
    boundary = "faultfaultfault"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"patient_id\"\r\n\r\n{patient_id}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    conn = socket.create_connection((host, int(port)), timeout=30)
    try:
        conn.sendall((f"POST /api/v1/uploads HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                      f"Authorization: {headers['Authorization']}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:int(len(body) * send_fraction)])
        yield conn
    finally:
        conn.close()


def answer_of(conn):
    try:
        return conn.recv(64).decode(errors="replace").split("\r\n")[0] or "closed"
    except OSError as error:
        return f"closed ({type(error).__name__})"


def test_a_worker_killed_mid_upload_leaves_no_orphan_row(cluster, server_env_for, tmp_path):
    env = server_env_for(cluster)
    outcomes = []
    with gunicorn(env, tmp_path / "gunicorn.log") as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        master = gunicorn_master(port)
        headers = sign_up(base_url, "uploader")
        pet = requests.post(f"{base_url}/api/v1/patients", headers=headers, timeout=30,
                            json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
        # Half the body sent, then the worker dies; then whole bodies with the worker killed while cleaning.
        for send_fraction, delay in ((0.5, 0.5), (1.0, 0.05), (1.0, 0.2), (1.0, 0.5)):
            with raw_upload(base_url, headers, pet["id"], png_bytes(), send_fraction=send_fraction) as conn:
                time.sleep(delay)
                os.kill(worker_pid(master), signal.SIGKILL)
                outcomes.append(answer_of(conn))
            wait_ready(base_url)
        after = requests.post(f"{base_url}/api/v1/uploads", headers=headers, timeout=60,
                              data={"patient_id": pet["id"]}, files={"file": ("x.png", png_bytes(), "image/png")})
        assert after.status_code == 201, after.text

    acknowledged = sum(outcome.startswith("HTTP/1.1 201") for outcome in outcomes) + 1
    with psycopg.connect(cluster["dsn"]) as conn:
        rows = conn.execute("SELECT storage_key, preview_key FROM uploads WHERE patient_id = %s",
                            (pet["id"],)).fetchall()
    missing_files = [key for row in rows for key in row if key and not (tmp_path / "uploads" / key).exists()]
    figures = (f"worker killed in {len(outcomes)} uploads (answers: {outcomes}); {len(rows)} upload rows for "
               f"{acknowledged} acknowledged uploads; {len(missing_files)} rows without their file")
    log.warning("fault figures: %s", figures)
    print("\n" + figures)
    assert len(rows) == acknowledged, figures
    assert not missing_files, figures
