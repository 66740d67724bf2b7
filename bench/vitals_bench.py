"""Vitals: ingest rate of 500-reading batches from a device, and the latency of a one-year downsampled query.

Run from the repository root:

    .venv/bin/python bench/vitals_bench.py [--batches 40] [--queries 20] [--database-url URL] [--redis-url URL]

The bench database is re-created and migrated and the app runs the production way (`gunicorn -k gevent -w 1
wsgi:app`). A guardian signs up, adds a dog and registers a collar, which then sends --batches batches of 500
heart-rate readings (one a minute, new sample ids) one after another over a keep-alive connection with its device
token. Printed: readings per second, and CPU per reading of the gunicorn worker and of the PostgreSQL backends.
Then a year of minute readings (525,600 rows) is written for a second patient straight into the table with
generate_series (ingesting a year through the API would take the bench minutes and measure nothing new), the table is
analysed, its hourly rollups are built with `flask vitals rebuild-rollups` (the API keeps them in step on ingest; a
load around it needs the rebuild), and --queries GET /vitals?bucket=1h and ?bucket=1d over that year are timed (p50,
p99, max), each checked to count all 525,600 readings.
"""

import argparse
import http.client
import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
from harness import (
    REPO,
    add_service_arguments,
    backend_ticks,
    check_service_arguments,
    cpu_ticks,
    expect,
    flask_command,
    http_json,
    prepare_database,
    run_bench,
    running_server,
    ticks_to_ms,
    worker_pid,
)

API = "/api/v1"
PASSWORD = "bench passphrase 2026"
BATCH = 500
YEAR_MINUTES = 365 * 24 * 60


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches of 500 readings to send")
    parser.add_argument("--queries", type=int, default=20, help="one-year downsampled queries to time per bucket")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def sign_up(base, email):
    expect(*http_json("POST", f"{base}{API}/auth/register", {"email": email, "password": PASSWORD,
                                                             "full_name": "Bench Owner", "role": "patient"}),
           201, "register")
    token = expect(*http_json("POST", f"{base}{API}/auth/login", {"email": email, "password": PASSWORD}), 200,
                   "login")["access_token"]
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def request(connection, method, path, headers, body=None):
    started = time.perf_counter()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    return response.status, payload, time.perf_counter() - started


def ingest(args, app, base, database):
    headers = sign_up(base, "vitals-bench@example.com")
    dog = expect(*http_json("POST", f"{base}{API}/patients", {"name": "Biscuit", "species": "dog"}, headers), 201,
                 "create dog")["id"]
    expect(*http_json("POST", f"{base}{API}/vitals/devices", {"patient_id": dog, "name": "Collar"}, headers), 201,
           "register device")
    token = expect(*http_json("POST", f"{base}{API}/vitals/devices", {"patient_id": dog, "name": "Collar 2"},
                              headers), 201, "register device")["token"]
    device = {"X-Device-Token": token, "Content-Type": "application/json"}
    start = datetime.now(timezone.utc) - timedelta(minutes=(args.batches + 2) * BATCH)
    bodies = []
    for batch in range(args.batches + 2):  # two warm-up batches
        bodies.append(json.dumps({"readings": [
            {"sample_id": f"b{batch}-{n}", "measurement": "heart_rate", "value": 70 + (n % 40), "unit": "/min",
             "taken_at": iso(start + timedelta(minutes=batch * BATCH + n))} for n in range(BATCH)]}))
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
    for body in bodies[:2]:
        status, payload, _ = request(connection, "POST", f"{API}/vitals/batch", device, body)
        if status != 200:
            raise SystemExit(f"batch answered {status}: {payload[:300]!r}")
    pid = worker_pid(app)
    worker_before, backends_before = cpu_ticks(pid), backend_ticks(database)
    started = time.perf_counter()
    for body in bodies[2:]:
        status, payload, _ = request(connection, "POST", f"{API}/vitals/batch", device, body)
        if status != 200:
            raise SystemExit(f"batch answered {status}: {payload[:300]!r}")
        if json.loads(payload)["results"][0]["status"] != "created":
            raise SystemExit("a new sample was not created")
    seconds = time.perf_counter() - started
    worker_ms = ticks_to_ms(cpu_ticks(pid) - worker_before)
    backends_after = backend_ticks(database)
    database_ms = ticks_to_ms(sum(backends_after.get(p, 0) - t for p, t in backends_before.items()) +
                              sum(t for p, t in backends_after.items() if p not in backends_before))
    connection.close()
    readings = args.batches * BATCH
    print(f"ingest:  {args.batches} batches x {BATCH} readings in {seconds:.2f} s = {readings / seconds:,.0f} "
          f"readings/s ({seconds / args.batches * 1000:.0f} ms per batch); CPU per reading: worker "
          f"{worker_ms * 1000 / readings:.0f} us, PostgreSQL {database_ms * 1000 / readings:.0f} us", flush=True)


def one_year(args, app, base, database, env):
    headers = sign_up(base, "vitals-bench-year@example.com")
    cat = expect(*http_json("POST", f"{base}{API}/patients", {"name": "Whiskers", "species": "cat"}, headers), 201,
                 "create cat")["id"]
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    begin = end - timedelta(minutes=YEAR_MINUTES)
    loading = time.perf_counter()
    database.execute("""
        INSERT INTO vital_observations (patient_id, measurement, loinc, unit, value, taken_at, source_kind, source_id,
                                        sample_id, version, received_at)
        SELECT %(cat)s, 'heart_rate', '8867-4', '/min', 120 + 40 * sin(n / 90.0), %(begin)s + n * interval '1 minute',
               'device', %(cat)s, 'y' || n, 1, now()
        FROM generate_series(0, %(last)s) AS n""", {"cat": cat, "begin": begin, "last": YEAR_MINUTES - 1})
    database.execute("ANALYZE vital_observations")
    print(f"loaded a year of minute readings ({YEAR_MINUTES:,} rows) in {time.perf_counter() - loading:.1f} s",
          flush=True)
    rebuilding = time.perf_counter()
    built = flask_command(env, "vitals", "rebuild-rollups").strip()
    database.execute("ANALYZE vital_hourly_rollups")
    print(f"rebuilt the rollups ({built}) in {time.perf_counter() - rebuilding:.1f} s", flush=True)
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
    path = (f"{API}/vitals?patient_id={cat}&measurement=heart_rate&from={iso(begin)}&to={iso(end)}"
            .replace("+", "%2B"))
    for bucket in ("1h", "1d"):
        timings = []
        for n in range(args.queries + 2):
            status, payload, seconds = request(connection, "GET", f"{path}&bucket={bucket}", headers)
            if status != 200:
                raise SystemExit(f"query answered {status}: {payload[:300]!r}")
            points = json.loads(payload)["points"]
            if n >= 2:
                timings.append(seconds * 1000)
        counted = sum(point["count"] for point in points)
        if counted != YEAR_MINUTES:
            raise SystemExit(f"?bucket={bucket} counted {counted:,} readings, not {YEAR_MINUTES:,}")
        timings.sort()
        print(f"one-year query ?bucket={bucket}: {len(points)} buckets over {counted:,} readings; "
              f"p50 {statistics.median(timings):.0f} ms  p99 {timings[max(int(len(timings) * 0.99) - 1, 0)]:.0f} ms"
              f"  max {timings[-1]:.0f} ms", flush=True)
    connection.close()


def run(args, stack):
    work_dir, env = prepare_database(args, stack)
    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir,
                        ready_path=f"{API}/health") as app, \
            psycopg.connect(args.database_url, autocommit=True) as database:
        ingest(args, app, app.base_url, database)
        one_year(args, app, app.base_url, database, env)
    return True


def main(argv=None):
    return run_bench("vitals_bench", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
