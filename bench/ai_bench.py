"""Latency of the symptom checker: the model call alone, POST /api/v1/ai/diagnoses and one interview step end to end.

Run from the repository root:

    .venv/bin/python bench/ai_bench.py [--calls 2000] [--requests 300] [--model-only]
                                       [--database-url URL] [--redis-url URL]

1. The model call: in-process (no server, no database), the active shipped model times
   `pawmanity.triage.assessment.assess` over a mix of realistic symptom lists for people, dogs and cats.
2. End to end: the bench database is re-created and migrated, the app runs the production way
   (`gunicorn -k gevent -w 1 wsgi:app`, embedded MontyDB for the logs), a patient with a dog signs in, and
   --requests diagnoses are posted one after another over a keep-alive connection (each one: auth, access check,
   assessment, a MongoDB log, an audit row).
3. Interview steps: interviews are started on the same dog and every question is answered (no / unsure) until each
   one finishes; --requests answers are timed (each one: auth, a locked read of the interview, an assessment, the
   choice of the next question, or the final assessment's log; a row update and an audit row).
Targets (issues 6 and 11): model call p99 under 20 ms, endpoint p99 under 60 ms, interview step p99 under 60 ms.

The machine may be shared, so each measurement also times a baseline in the same run: after every timed call, one
`GET /` on the bare Flask app of bench/bare_app.py, served the same way (gunicorn -k gevent -w 1) over a keep-alive
connection of its own. Each figure is printed absolute and as a ratio to the baseline's same percentile over the
same stretch of time, with the load average and how much CPU the machine spent on other work meanwhile. At the end
the diagnosis logs are counted where they must be: in the document store, or still waiting in the outbox.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from harness import (
    REPO,
    add_service_arguments,
    backend_ticks,
    check_service_arguments,
    cpu_ticks,
    expect,
    http_json,
    machine_busy_ticks,
    prepare_database,
    print_log_problems,
    run_bench,
    running_server,
    ticks_to_ms,
    worker_pid,
)

CASES = [
    ("human", ["nasal_discharge", "sneezing", "sore_throat"]),
    ("human", ["chest_pain", "sweating", "nausea"]),
    ("human", ["fever", "cough", "muscle_aches", "fatigue", "headache"]),
    ("dog", ["vomiting", "diarrhea", "lethargy"]),
    ("dog", ["unproductive_retching", "distended_abdomen", "restlessness"]),
    ("cat", ["increased_thirst", "weight_loss", "frequent_urination"]),
    ("cat", ["sneezing", "eye_discharge", "nasal_discharge"]),
]
DOG_CASES = [codes for species, codes in CASES if species == "dog"] + [["head_shaking", "ear_odor"], ["itching"]]
INTERVIEW_STARTS = [["itching"], ["lethargy"], ["vomiting"], ["limping"], ["cough"]]
API = "/api/v1"
PASSWORD = "bench passphrase 2026"
TARGETS_MS = {"model call": 20, "diagnosis": 60, "interview step": 60}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="model calls to time")
    parser.add_argument("--requests", type=int, default=300, help="diagnoses to post end to end")
    parser.add_argument("--model-only", action="store_true", help="skip the server part")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def percentiles(timings):
    timings = sorted(timings)
    return statistics.median(timings), timings[max(int(len(timings) * 0.99) - 1, 0)], timings[-1]


@dataclass
class Measurement:
    """Timings of one kind of call, each followed by one baseline request, and what the machine did meanwhile."""

    name: str
    what: str
    timings: list = field(default_factory=list)
    baseline: list = field(default_factory=list)
    load_before: tuple = ()
    load_after: tuple = ()
    machine_ms: float = 0.0
    own_ms: float = 0.0
    worker_ms: float = 0.0
    database_ms: float = 0.0
    wall_ms: float = 0.0


class Baseline:
    """`GET /` on the bare Flask app over one keep-alive connection."""

    def __init__(self, server):
        self.server, self.connection, self.last_used = server, None, time.monotonic()

    def reconnect(self):
        """A fresh connection and one untimed request: gunicorn closes a keep-alive connection idle for 2 s."""
        if self.connection is not None:
            self.connection.close()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        self.time_one()

    def time_one(self):
        if self.connection.sock is not None and time.monotonic() - self.last_used > 1:
            self.reconnect()  # before gunicorn's keep-alive timeout would close it under the request
        self.last_used = time.monotonic()
        started = time.perf_counter()
        self.connection.request("GET", "/")
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"the baseline answered {response.status}")
        return elapsed


class Watch:
    """Load average and CPU of the machine over a measured stretch, and of the processes this benchmark runs: this
    script, the servers' workers and, given a database connection, the PostgreSQL backends serving the bench."""

    def __init__(self, measurement, *, worker=None, baseline_worker, database=None):
        self.measurement, self.worker, self.baseline_worker = measurement, worker, baseline_worker
        self.database = database

    def _ticks(self):
        """(this script, the measured worker, the baseline's worker, the database backends) in ms of CPU."""
        database = sum(backend_ticks(self.database).values()) if self.database is not None else 0
        return (time.process_time() * 1000, ticks_to_ms(cpu_ticks(self.worker)) if self.worker else 0.0,
                ticks_to_ms(cpu_ticks(self.baseline_worker)), ticks_to_ms(database))

    def __enter__(self):
        self.measurement.load_before = os.getloadavg()
        self.machine, self.own, self.wall = machine_busy_ticks(), self._ticks(), time.perf_counter()
        return self.measurement

    def __exit__(self, *exc):
        own = [after - before for after, before in zip(self._ticks(), self.own)]
        self.measurement.load_after = os.getloadavg()
        self.measurement.machine_ms = ticks_to_ms(machine_busy_ticks() - self.machine)
        self.measurement.own_ms = sum(own)
        self.measurement.worker_ms, self.measurement.database_ms = own[1], own[3]
        self.measurement.wall_ms = (time.perf_counter() - self.wall) * 1000


def model_call(calls, baseline):
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("PAWMANITY_INSTANCE_DIR", tempfile.mkdtemp(prefix="pawmanity-ai-bench-"))
    from pawmanity import create_app
    from pawmanity.triage.assessment import assess

    app, rng = create_app("development", plugins=()), random.Random(1)
    measurement = Measurement("model call", f"{calls} assessments (in process)")
    with app.app_context():
        for species, codes in CASES * 20:  # warm-up: loads the artefact once
            assess(species, symptom_list(rng, codes), age_years=6, sex="female")
        baseline.reconnect()
        with Watch(measurement, baseline_worker=worker_pid(baseline.server)):
            for n in range(calls):
                species, codes = CASES[n % len(CASES)]
                started = time.perf_counter()
                assess(species, symptom_list(rng, codes), age_years=rng.uniform(1, 80),
                       sex=rng.choice(("female", "male")))
                measurement.timings.append((time.perf_counter() - started) * 1000)
                measurement.baseline.append(baseline.time_one())
    return measurement


def endpoint(args, app, baseline, database):
    base = app.base_url
    expect(*http_json("POST", f"{base}{API}/auth/register", {"email": "ai-bench@example.com", "password": PASSWORD,
                                                             "full_name": "Bench Owner", "role": "patient"}),
           201, "register")
    token = expect(*http_json("POST", f"{base}{API}/auth/login", {"email": "ai-bench@example.com",
                                                                  "password": PASSWORD}), 200, "login")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    dog = expect(*http_json("POST", f"{base}{API}/patients", {"name": "Biscuit", "species": "dog",
                                                              "date_of_birth": "2020-05-01"},
                            headers), 201, "create dog")["id"]
    connection, rng = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10), random.Random(2)
    diagnoses = Measurement("diagnosis", f"{args.requests} POST /ai/diagnoses")
    posted = 0
    for n in range(20):  # the first few warm the worker up
        _post(connection, f"{API}/ai/diagnoses", {"patient_id": dog, "symptoms": symptom_list(
            rng, DOG_CASES[n % len(DOG_CASES)])}, headers, 201)
        posted += 1
    baseline.reconnect()
    with Watch(diagnoses, **watched(app, baseline, database)):
        for n in range(args.requests):
            payload = {"patient_id": dog, "symptoms": symptom_list(rng, DOG_CASES[n % len(DOG_CASES)])}
            started = time.perf_counter()
            _post(connection, f"{API}/ai/diagnoses", payload, headers, 201)
            diagnoses.timings.append((time.perf_counter() - started) * 1000)
            diagnoses.baseline.append(baseline.time_one())
            posted += 1
    steps = Measurement("interview step", f"{args.requests} POST /ai/interviews/{{id}}/answers")
    baseline.reconnect()
    with Watch(steps, **watched(app, baseline, database)):
        posted += interview_steps(connection, headers, dog, args.requests, rng, steps, baseline)
    connection.close()
    return diagnoses, steps, posted


def watched(app, baseline, database):
    return {"worker": worker_pid(app), "baseline_worker": worker_pid(baseline.server), "database": database}


def interview_steps(connection, headers, dog, wanted, rng, measurement, baseline):
    """Answer interviews' questions until `wanted` answers are timed; the number of final assessments logged."""
    n = finished = 0
    while len(measurement.timings) < wanted:
        start = {"patient_id": dog, "symptoms": symptom_list(rng, INTERVIEW_STARTS[n % len(INTERVIEW_STARTS)])}
        n += 1
        interview = _post(connection, f"{API}/ai/interviews", start, headers, 201)
        while interview["status"] == "asking" and len(measurement.timings) < wanted:
            answer = {"question_id": interview["question"]["id"], "answer": rng.choice(("no", "no", "unsure"))}
            started = time.perf_counter()
            interview = _post(connection, f"{API}/ai/interviews/{interview['id']}/answers", answer, headers, 200)
            if n > 2:  # the first interviews warm the worker up
                measurement.timings.append((time.perf_counter() - started) * 1000)
                measurement.baseline.append(baseline.time_one())
        finished += interview["status"] == "finished"
    return finished


def _post(connection, path, payload, headers, status):
    connection.request("POST", path, body=json.dumps(payload), headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != status:
        raise SystemExit(f"{path} answered {response.status}: {body[:300]!r}")
    return json.loads(body)


def symptom_list(rng, codes):
    return [{"code": code, "severity": rng.randint(1, 10), "duration_days": round(rng.uniform(0.1, 10), 2)}
            for code in codes]


def count_logs(args, instance_dir, expected):
    """Diagnosis logs in the embedded store and still waiting in the outbox, once the server has stopped."""
    from montydb import MontyClient, set_storage

    set_storage(str(instance_dir / "docstore"), storage="sqlite")
    with MontyClient(str(instance_dir / "docstore")) as client:
        stored = client["pawmanity"]["diagnosis_logs"].count_documents({})
    with psycopg.connect(args.database_url) as conn:
        waiting = conn.execute("SELECT count(*) FROM diagnosis_log_outbox WHERE delivered_at IS NULL").fetchone()[0]
    verdict = "all there" if stored + waiting >= expected else "SOME MISSING"
    print(f"logs:        {stored} in the document store + {waiting} waiting in the outbox, "
          f"for {expected} assessments logged: {verdict}")
    return stored + waiting >= expected


def report(measurement):
    p50, p99, worst = percentiles(measurement.timings)
    b50, b99, _ = percentiles(measurement.baseline)
    target = TARGETS_MS[measurement.name]
    cores = os.cpu_count() or 1
    others = max(measurement.machine_ms - measurement.own_ms, 0.0) / measurement.wall_ms if measurement.wall_ms else 0
    print(f"{measurement.name + ':':<16}{measurement.what}")
    print(f"    absolute  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {worst:7.2f} ms  "
          f"(target p99 < {target} ms: {'PASS' if p99 < target else 'NOT MET'})")
    print(f"    baseline  p50 {b50:7.2f} ms  p99 {b99:7.2f} ms  (GET / on the bare Flask app, after each call)")
    print(f"    ratio     p50 {p50 / b50:7.1f} x   p99 {p99 / b99:7.1f} x")
    if measurement.worker_ms:
        calls = len(measurement.timings)
        print(f"    CPU       {measurement.worker_ms / calls:.2f} ms in the server's worker and "
              f"{measurement.database_ms / calls:.2f} ms in PostgreSQL per call (clock ticks over the run)")
    print(f"    machine   load average {measurement.load_before[0]:.2f} -> {measurement.load_after[0]:.2f} "
          f"on {cores} cores; other processes used {others:.2f} cores meanwhile")
    return p99 < target


def run(args, stack):
    work_dir, env = (None, None)
    if not args.model_only:
        work_dir, env = prepare_database(args, stack)
        env.pop("MONGO_URI", None)  # the embedded on-disk store, like `make run`
    else:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pawmanity-bench-")))
        env = dict(os.environ)
    print("starting the bare Flask baseline (gunicorn -k gevent -w 1) ...", flush=True)
    servers = []
    try:
        bare = stack.enter_context(running_server("bare-flask", "bare_app:app", cwd=REPO / "bench", env=env,
                                                  log_dir=work_dir, ready_path="/"))
        servers.append(bare)
        baseline = Baseline(bare)
        results = [model_call(args.calls, baseline)]
        logs_ok = True
        if not args.model_only:
            print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
            with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir,
                                ready_path=f"{API}/health") as app:
                servers.append(app)
                with psycopg.connect(args.database_url, autocommit=True) as database:
                    diagnoses, steps, logged = endpoint(args, app, baseline, database)
                results += [diagnoses, steps]
                time.sleep(1)  # logs are copied to the store just after each answer
            logs_ok = count_logs(args, work_dir / "instance", logged)
    finally:
        print_log_problems(servers)
    print()
    passed = [report(measurement) for measurement in results]
    return all(passed) and logs_ok


def main(argv=None):
    return run_bench("ai_bench", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
