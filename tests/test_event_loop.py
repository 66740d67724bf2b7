"""Nothing stalls the event loop: a Socket.IO client keeps its round-trip time while others sign in or upload.

A real gunicorn gevent worker (the production server) with production argon2 parameters. A Socket.IO client pings
every 10 ms through the worker's loop while 20 sign-ins, or 4 photo uploads, run at once; its round-trip p99 stays
under a small bound, and the worker's own loop-lag histogram and stall counter agree that the loop was never held.
Sign-in costs about 25 ms of argon2 CPU, so with hashing on the loop 20 of them hold it for half a second.
"""

import io
import json
import multiprocessing
import os
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from tests import socket_probe
from tests.live_server import gunicorn
from tests.support import PASSWORD

# Run alone (`make test` does): the bound is on latency, which any other test's CPU on this machine would add to.
pytestmark = [pytest.mark.slow, pytest.mark.quiet]

# The worker's own view is the measure: its loop-lag histogram. Offloaded, it woke more than 30 ms late 0-2 times per
# burst on this 2-core machine (the load, its client and the pool threads share the cores with the loop), never more
# than 50 ms late in the median round; with the work on the loop, 3-4 times and by hundreds of milliseconds. The
# client's round trip also crosses the client's process and the kernel: offloaded 20-80 ms p99, on the loop 360-2000.
# Why not the 30 ms: the pinger (one thread, a process of its own, not niced) adds one wake-up of its own
# process, and its 10 ms sleeps woke 8-22 ms late at p99 with the machine shared (a 250 Hz tick); the rest of a long
# round trip is the worker's loop itself waking late for want of a core, as its histogram shows (>30 ms late 8-13
# times during bursts, with python-socketio's client and this one alike: bench/loop_client_probe.py).
LOOP_LAG_BOUND = 0.050
ROUND_TRIP_P99_BOUND = 0.100
METRICS_TOKEN = "a-metrics-token-for-the-loop-test"


@pytest.fixture
def production_server(server_env, tmp_path):
    env = dict(server_env)
    for name in ("PAWMANITY_ARGON2_MEMORY_KIB", "PAWMANITY_ARGON2_TIME_COST"):
        env.pop(name)  # production's own hashing cost: the point of the test
    env.update(PAWMANITY_LOGIN_RATE_LIMIT="10000 per minute", PAWMANITY_REGISTER_RATE_LIMIT="10000 per minute",
               PAWMANITY_UPLOAD_RATE_LIMIT="10000 per minute", PAWMANITY_METRICS_TOKEN=METRICS_TOKEN,
               PAWMANITY_UPLOAD_DIR=str(tmp_path / "uploads"))
    with gunicorn(env, tmp_path / "gunicorn.log") as base_url:
        yield base_url


def register(base_url, label):
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    answer = requests.post(f"{base_url}/api/v1/auth/register", timeout=30, json={
        "email": email, "password": PASSWORD, "full_name": "Loop Test", "role": "patient"})
    assert answer.status_code == 201, answer.text
    return email


def sign_in(base_url, email):
    answer = requests.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def loop_metrics(base_url):
    return socket_probe.loop_metrics(base_url, METRICS_TOKEN)


ROUNDS = 3  # each load is measured three times; the median round decides, as a benchmark would (2 shared cores)


def measured_rounds(base_url, token, load, *args):
    """Run `load(*args)` in a low-priority process of its own ROUNDS times while a pinger runs; per round: the ping
    p99, how often the worker's loop woke later than the bound, the stalls it logged, and what the load returned."""
    rounds = []
    # The pinger (tests/socket_probe.py: one thread, no python-socketio reader and writer threads) and the load each
    # run in a process of their own: in one process the load's threads would take the GIL from the pinger and the
    # test would measure its own client. The load at a lower priority, too: its CPU is not what is measured.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=os.nice, initargs=(10,)) as process:
        process.submit(time.sleep, 0).result(timeout=60)  # started before anything is measured
        for _ in range(ROUNDS):
            before = loop_metrics(base_url)
            with socket_probe.pinging(base_url, token) as pinger:
                time.sleep(0.3)
                outcome = process.submit(load, *args).result(timeout=120)
                time.sleep(0.1)
            buckets, total, stalls = loop_metrics(base_url)
            assert total > before[1], "the loop monitor is not sampling"
            late = (total - buckets[LOOP_LAG_BOUND]) - (before[1] - before[0][LOOP_LAG_BOUND])
            trips = pinger["round_trips"]
            rounds.append({"p99": statistics.quantiles(trips, n=100)[98], "late": late, "stalls": stalls - before[2],
                           "outcome": outcome, "slowest": [round(t * 1000, 1) for t in sorted(trips)[-3:]],
                           "pinger_late_p99": round(statistics.quantiles(pinger["late"], n=100)[98] * 1000, 1)})
    return rounds


def assert_loop_kept_free(rounds):
    def median(key):
        return statistics.median(round_[key] for round_ in rounds)

    report = [{key: value for key, value in round_.items() if key != "outcome"} for round_ in rounds]
    print(report)  # shown with -rP: the margin a passing run had
    assert median("p99") < ROUND_TRIP_P99_BOUND, report
    assert median("late") == 0, report  # the worker's own histogram: no wake-up later than LOOP_LAG_BOUND
    assert median("stalls") == 0, report


def sign_in_burst(base_url, emails, count):
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda n: sign_in(base_url, emails[n % len(emails)]), range(count)))


def upload_burst(base_url, headers, patient_id, data, count):
    def upload(n):
        return requests.post(f"{base_url}/api/v1/uploads", headers=headers, timeout=120,
                             data={"patient_id": patient_id}, files={"file": (f"p{n}.jpg", data, "image/jpeg")})

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [(answer.status_code, answer.text) for answer in pool.map(upload, range(count))]


def test_sign_ins_do_not_stall_a_live_socket(production_server):
    base_url = production_server
    emails = [register(production_server, f"burst{n}") for n in range(4)]
    watcher = sign_in(base_url, register(base_url, "watcher"))
    rounds = measured_rounds(base_url, watcher, sign_in_burst, base_url, emails, 20)
    assert all(len(set(round_["outcome"])) == 20 for round_ in rounds)
    assert_loop_kept_free(rounds)


def photo_bytes(side=2000):
    image = Image.effect_noise((side, side), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_image_uploads_do_not_stall_a_live_socket(production_server):
    base_url = production_server
    token = sign_in(base_url, register(base_url, "uploader"))
    headers = {"Authorization": f"Bearer {token}"}
    pet = requests.post(f"{base_url}/api/v1/patients", headers=headers, timeout=30,
                        json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
    data = photo_bytes()
    rounds = measured_rounds(base_url, token, upload_burst, base_url, headers, pet["id"], data, 4)
    assert all([status for status, _ in round_["outcome"]] == [201] * 4 for round_ in rounds), rounds
    assert_loop_kept_free(rounds)


def test_a_stall_is_logged_naming_the_request(server_env, tmp_path):
    """With hashing put back on the loop (the cpu pool turned off), one sign-in holds it for its whole argon2 run:
    the worker logs a loop_stall naming that request, and counts it."""
    env = dict(server_env, PAWMANITY_CPU_THREADS="0", PAWMANITY_LOOP_STALL_THRESHOLD_MS="10",
               PAWMANITY_METRICS_TOKEN=METRICS_TOKEN, PAWMANITY_REGISTER_RATE_LIMIT="10000 per minute",
               PAWMANITY_LOGIN_RATE_LIMIT="10000 per minute")
    for name in ("PAWMANITY_ARGON2_MEMORY_KIB", "PAWMANITY_ARGON2_TIME_COST"):
        env.pop(name)
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(env, log_path) as base_url:
        email = register(base_url, "stall")
        answer = requests.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                               timeout=60, headers={"X-Request-ID": "the-slow-sign-in"})
        assert answer.status_code == 200
        time.sleep(0.2)  # the monitor logs on its next wake-up
        _, _, stalls = loop_metrics(base_url)
    lines = [json.loads(line[line.index("{"):]) for line in log_path.read_text().splitlines() if "loop_stall" in line]
    assert stalls >= 1
    assert any(line["activity"] == "POST /api/v1/auth/login request_id=the-slow-sign-in" and line["held_ms"] >= 10
               for line in lines), lines


def test_a_full_pool_refuses_at_once_with_retry_after():
    """threads + queue jobs in flight: the next caller gets Busy (503 server_busy), not a place in an endless line."""
    import gevent

    from pawmanity.core.offload import Busy, _BoundedGeventPool

    pool = _BoundedGeventPool("cpu", threads=1, queue=1)
    running = [gevent.spawn(pool.run, time.sleep, (0.3,), {}, retry_after=2) for _ in range(2)]
    gevent.sleep(0.05)
    with pytest.raises(Busy) as refused:
        pool.run(time.sleep, (0,), {}, retry_after=2)
    assert refused.value.status == 503 and refused.value.code == "server_busy"
    assert refused.value.headers == {"Retry-After": "2"}
    gevent.joinall(running, raise_error=True)
    assert pool.in_flight == 0
    assert pool.run(sum, ([1, 2],), {}, retry_after=2) == 3  # room again once the jobs are done
