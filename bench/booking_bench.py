"""Booking under contention: throughput and latency of slot search, booking and listing, and no double booking.

Run from the repository root:

    .venv/bin/python bench/booking_bench.py [--clients 50] [--duration 15] [--database-url URL] [--redis-url URL]

What it does, all on 127.0.0.1:
  1. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench"), runs the migrations and creates an admin with `flask create-admin`;
  2. starts PAWMANITY as `gunicorn -k gevent -w 1 wsgi:app` with PAWMANITY_CONFIG=production, the per-account quota
     of active bookings raised to 100000 (so that it does not dominate) and bookings open 365 days ahead;
  3. sets up through the API: 5 doctors available around the clock in 15-minute slots, verified by the admin, and
     --clients patient accounts with a dog each;
  4. runs --clients threads for --duration seconds, each on its own keep-alive connection, looping over
       GET  /api/v1/doctors/{id}/slots?from=&to=   a window of a few hours
       POST /api/v1/appointments                   one of its free slots: 201 booked, or 409 slot_taken if beaten
       GET  /api/v1/appointments?per_page=20       every LIST_EVERY-th round
     Half of the rounds go to one "hot" doctor's earliest window that still has free slots and pick one of its first
     two free slots, so that many clients race for the same slot; the rest spread over the other doctors and the year;
  5. prints bookings/second, requests/second, p50 and p99 latency per kind of request and overall, the responses by
     status and problem code, connection errors, and the server's CPU time per request (utime+stime of the gunicorn
     worker from /proc, before and after the load), and its ratio to the authenticated floor (bench/floor_app.py:
     a JWT check and a select of the user by id, served the same way and loaded with wrk for 5 s in the same run);
  6. counts in PostgreSQL the pairs of active appointments of one doctor that overlap: there must be none (PASS),
     and checks the audit trail's hash chain, which every booking appended to concurrently (`flask audit verify`);
  7. stops the server and drops the database, also on Ctrl-C or an error.

The exit status is 0 only when there is no double booking, the audit chain is intact, and there was no 5xx response
and no connection error.
"""

import argparse
import http.client
import json
import math
import random
import shutil
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from harness import (
    HOST,
    REPO,
    BenchError,
    add_service_arguments,
    check_service_arguments,
    cpu_ticks,
    expect,
    flask_command,
    http_json,
    log_tail,
    machine_load,
    measure_floor,
    prepare_database,
    print_log_exceptions,
    print_log_problems,
    run_bench,
    running_server,
    start_floor,
    ticks_to_ms,
    worker_pid,
)

API = "/api/v1"
PASSWORD = "bench passphrase 2026"
ADMIN_EMAIL = "admin-bench@example.com"
HORIZON_DAYS = 365
APP_SETTINGS = {
    "PAWMANITY_MAX_ACTIVE_BOOKINGS": "100000",
    "PAWMANITY_BOOKING_HORIZON_DAYS": str(HORIZON_DAYS),
}

DOCTORS = 5
SLOT_MINUTES = 15
WINDOW_HOURS = 3  # the span of one slot search
WINDOW = timedelta(hours=WINDOW_HOURS)
HOT_SHARE = 0.5  # share of rounds that go to the hot doctor's earliest window
HOT_CHOICES = 2  # a hot round books one of the first this many free slots
LIST_EVERY = 5  # every this many rounds a client also lists its appointments

SETUP_THREADS = 4  # registration and sign-in hash with argon2id: more threads would not be faster
REQUEST_TIMEOUT = 30
MAX_DURATION = 600  # access tokens live 15 minutes and are not refreshed here

KINDS = ("slots", "book", "list")

ACTIVE = "('requested', 'confirmed', 'in_progress')"
DOUBLE_BOOKINGS_SQL = f"""
    SELECT count(*) FROM appointments a JOIN appointments b
      ON a.doctor_id = b.doctor_id AND a.id < b.id
     AND a.status IN {ACTIVE} AND b.status IN {ACTIVE}
     AND a.start_at < b.end_at AND b.start_at < a.end_at
"""
STORED_SQL = f"SELECT count(*), count(*) FILTER (WHERE status IN {ACTIVE}) FROM appointments"


@dataclass
class Client:
    email: str
    token: str
    patient_id: str


@dataclass
class Tally:
    """What one client loop saw; merged across loops at the end."""
    latencies: dict = field(default_factory=lambda: defaultdict(list))  # kind -> seconds
    responses: Counter = field(default_factory=Counter)  # (kind, status, problem code or "") -> count
    errors: Counter = field(default_factory=Counter)  # (kind, exception name) -> count

    def merge(self, other):
        for kind, values in other.latencies.items():
            self.latencies[kind] += values
        self.responses.update(other.responses)
        self.errors.update(other.errors)


@dataclass
class LoadResult:
    clients: int
    elapsed: float
    tally: Tally
    server_cpu_ms: float
    client_cpu_s: float


@dataclass
class Integrity:
    double_bookings: int
    stored: int
    active: int
    audit_chain: str  # the verdict of `flask audit verify`
    audit_intact: bool


# --- command line --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent client loops (default 50)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (default 15)")
    parser.add_argument("--keep-log", type=Path, metavar="PATH",
                        help="copy the server's gunicorn log to PATH at the end (it is otherwise deleted)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients must be >= 1")
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be between 1 and {MAX_DURATION} seconds (access tokens live 15 minutes)")
    check_service_arguments(parser, args)
    return args


# --- set-up through the API ----------------------------------------------------------------------------------------

def create_admin(env):
    flask_command({**env, "PAWMANITY_ADMIN_PASSWORD": PASSWORD}, "create-admin", ADMIN_EMAIL)


def login(base_url, email):
    status, body = http_json("POST", f"{base_url}{API}/auth/login", {"email": email, "password": PASSWORD})
    return expect(status, body, 200, f"signing in {email}")["access_token"]


def register(base_url, email, full_name, role):
    status, body = http_json("POST", f"{base_url}{API}/auth/register",
                             {"email": email, "password": PASSWORD, "full_name": full_name, "role": role})
    expect(status, body, 201, f"registering {email}")
    return login(base_url, email)


def call(base_url, method, path, token, body=None, expected=200):
    status, answer = http_json(method, base_url + API + path, body, headers={"Authorization": f"Bearer {token}"})
    return expect(status, answer, expected, f"{method} {API}{path}")


def create_doctor(base_url, admin_token, number):
    """A verified doctor who treats dogs, cats and humans around the clock, in UTC; returns the profile id."""
    email = f"doctor{number}-bench@example.com"
    token = register(base_url, email, f"Doctor Bench {number}", "doctor")
    status, profile = http_json("PUT", f"{base_url}{API}/doctors/me", {
        "specialty": "general_practice", "species_treated": ["dog", "cat", "human"],
        "license_number": f"BENCH-{number:04d}", "bio": "Benchmark doctor", "timezone": "UTC",
    }, headers={"Authorization": f"Bearer {token}"})
    if status not in (200, 201):
        raise BenchError(f"PUT {API}/doctors/me answered {status}: {profile}")
    rules = [{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(7)]
    call(base_url, "PUT", "/doctors/me/availability", token, {"rules": rules, "slot_minutes": SLOT_MINUTES})
    call(base_url, "POST", f"/admin/doctors/{profile['id']}/verify", admin_token)
    return profile["id"]


def create_client(base_url, number):
    email = f"client{number}-bench@example.com"
    token = register(base_url, email, f"Client Bench {number}", "patient")
    pet = call(base_url, "POST", "/patients", token, {"name": f"Rex {number}", "species": "dog", "sex": "male"},
               expected=201)
    return Client(email=email, token=token, patient_id=pet["id"])


def set_up(base_url, clients):
    admin_token = login(base_url, ADMIN_EMAIL)
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        doctors = list(pool.map(lambda n: create_doctor(base_url, admin_token, n), range(DOCTORS)))
        accounts = list(pool.map(lambda n: create_client(base_url, n), range(clients)))
    return doctors, accounts


def check_booking_works(base_url, client, doctor_id):
    """One search and booking before the load: a broken request fails here, with the server's answer."""
    start = next_midnight() + timedelta(days=HORIZON_DAYS // 2)
    slots = call(base_url, "GET", slots_path(doctor_id, start), client.token)["items"]
    if not slots:
        raise BenchError(f"doctor {doctor_id} has no free slot from {start:%Y-%m-%d %H:%M} UTC")
    call(base_url, "POST", "/appointments", client.token, booking(doctor_id, client, slots[0]), expected=201)


# --- requests ------------------------------------------------------------------------------------------------------

def next_midnight():
    now = datetime.now(timezone.utc)
    return datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)


def slots_path(doctor_id, start):
    query = urllib.parse.urlencode({"from": start.isoformat(), "to": (start + WINDOW).isoformat(), "per_page": 100})
    return f"/doctors/{doctor_id}/slots?{query}"


def booking(doctor_id, client, slot):
    return {"doctor_id": doctor_id, "patient_id": client.patient_id, "start": slot["start"], "type": "video",
            "reason": "bench"}


class KeepAlive:
    """One persistent HTTP/1.1 connection of one client, re-opened after an error."""

    def __init__(self, port, token):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.connection = None

    def request(self, method, path, body=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        headers, payload = self.headers, None
        if body is not None:
            headers, payload = {**headers, "Content-Type": "application/json"}, json.dumps(body).encode()
        self.connection.request(method, API + path, body=payload, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def timed(connection, tally, kind, method, path, body=None):
    """Send one request and record it; the status and decoded body, or (None, None) after a connection error."""
    begin = time.perf_counter()
    try:
        status, raw = connection.request(method, path, body)
    except (OSError, http.client.HTTPException) as error:
        tally.errors[(kind, type(error).__name__)] += 1
        connection.close()
        return None, None
    tally.latencies[kind].append(time.perf_counter() - begin)
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    code = answer.get("code", "") if status >= 300 and isinstance(answer, dict) else ""
    tally.responses[(kind, status, code or "")] += 1
    return status, answer


# --- the load ------------------------------------------------------------------------------------------------------

class Targets:
    """Where each round searches: the hot doctor's earliest window with free slots, or anywhere in the year."""

    def __init__(self, doctors):
        self.hot_doctor, self.cold_doctors = doctors[0], doctors[1:] or doctors
        self.first_day = next_midnight()
        self._hot_start = self.first_day
        self._lock = threading.Lock()

    def pick(self, rng):
        """(doctor id, window start, whether it is the hot window)."""
        if rng.random() < HOT_SHARE:
            with self._lock:
                return self.hot_doctor, self._hot_start, True
        day = self.first_day + timedelta(days=rng.randrange(1, HORIZON_DAYS - 7))  # well inside the horizon
        return rng.choice(self.cold_doctors), day + timedelta(hours=rng.randrange(0, 24 - WINDOW_HOURS)), False

    def hot_window_full(self, start):
        """A client found no free slot in the hot window starting at `start`: move on, once."""
        with self._lock:
            if self._hot_start == start:
                self._hot_start = start + WINDOW


def client_loop(port, client, targets, rng, go, stop, tally):
    connection = KeepAlive(port, client.token)
    go.wait()
    try:
        rounds = 0
        while not stop.is_set():
            rounds += 1
            search_and_book(connection, client, targets, rng, stop, tally)
            if rounds % LIST_EVERY == 0 and not stop.is_set():
                timed(connection, tally, "list", "GET", "/appointments?per_page=20")
    finally:
        connection.close()


def search_and_book(connection, client, targets, rng, stop, tally):
    doctor_id, start, hot = targets.pick(rng)
    status, answer = timed(connection, tally, "slots", "GET", slots_path(doctor_id, start))
    if status != 200 or stop.is_set():
        return
    slots = answer["items"]
    if not slots:
        if hot:
            targets.hot_window_full(start)
        return
    slot = rng.choice(slots[:HOT_CHOICES] if hot else slots)
    timed(connection, tally, "book", "POST", "/appointments", booking(doctor_id, client, slot))


def run_load(server, doctors, clients, duration):
    targets = Targets(doctors)
    go, stop = threading.Event(), threading.Event()
    tallies = [Tally() for _ in clients]
    threads = [threading.Thread(target=client_loop, name=f"client-{n}", daemon=True,
                                args=(server.port, client, targets, random.Random(n), go, stop, tallies[n]))
               for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    pid = worker_pid(server)
    cpu_before, client_cpu_before = cpu_ticks(pid), time.process_time()
    begin = time.perf_counter()
    try:
        go.set()
        time.sleep(duration)
    finally:
        stop.set()
        go.set()  # loops still waiting to start see the stop at once
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
    elapsed = time.perf_counter() - begin
    cpu_after, client_cpu = cpu_ticks(pid), time.process_time() - client_cpu_before
    if any(thread.is_alive() for thread in threads):
        raise BenchError(f"client loops did not stop within {REQUEST_TIMEOUT + 5} s after the load")
    if worker_pid(server) != pid:
        raise BenchError(f"the gunicorn worker was replaced during the load:\n{log_tail(server.log_path)}")
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return LoadResult(clients=len(clients), elapsed=elapsed, tally=total,
                      server_cpu_ms=ticks_to_ms(cpu_after - cpu_before), client_cpu_s=client_cpu)


# --- checks in the database ----------------------------------------------------------------------------------------

def check_database(url, env):
    """Overlapping active appointments and stored ones by SQL; the audit trail's hash chain by `flask audit verify`
    (every booking appended to it concurrently)."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        double_bookings = conn.execute(DOUBLE_BOOKINGS_SQL).fetchone()[0]
        stored, active = conn.execute(STORED_SQL).fetchone()
    try:
        audit_chain, audit_intact = flask_command(env, "audit", "verify").strip(), True
    except BenchError as error:
        audit_chain, audit_intact = str(error).strip(), False
    return Integrity(double_bookings=double_bookings, stored=stored, active=active, audit_chain=audit_chain,
                     audit_intact=audit_intact)


# --- report --------------------------------------------------------------------------------------------------------

def percentile_ms(values, fraction):
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not values:
        return float("nan")
    return values[max(0, math.ceil(fraction * len(values)) - 1)] * 1000


def count(tally, kind=None, status=None, code=None):
    return sum(n for (k, s, c), n in tally.responses.items()
               if (kind is None or k == kind) and (status is None or s == status) and (code is None or c == code))


def print_latency_table(result):
    header = f"{'request':<8} {'responses':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    rows = [(kind, sorted(result.tally.latencies[kind])) for kind in KINDS]
    rows.append(("all", sorted(v for kind in KINDS for v in result.tally.latencies[kind])))
    for label, values in rows:
        print(f"{label:<8} {len(values):>9} {len(values) / result.elapsed:>9.1f} "
              f"{percentile_ms(values, 0.50):>8.2f} {percentile_ms(values, 0.99):>8.2f}")


def print_responses(tally):
    print("responses by request, status and problem code:")
    for (kind, status, code), n in sorted(tally.responses.items(), key=lambda item: (KINDS.index(item[0][0]),
                                                                                     item[0][1], item[0][2])):
        print(f"  {kind:<6} {status} {code or '':<22} {n:>8}")
    unexpected = {key: n for key, n in tally.responses.items()
                  if not (200 <= key[1] < 300 or (key[0], key[1], key[2]) == ("book", 409, "slot_taken"))}
    print(f"responses other than 2xx and 409 slot_taken: {sum(unexpected.values())}")


def print_report(result, integrity, floor):
    tally = result.tally
    responses = sum(tally.responses.values())
    booked = count(tally, "book", 201)
    print(f"\nload: {result.clients} clients, {result.elapsed:.2f} s (until the last request in flight finished)\n")
    print_latency_table(result)
    print()
    print(f"bookings:            {booked} booked (201) = {booked / result.elapsed:.1f} bookings/s")
    print(f"slot_taken:          {count(tally, 'book', 409, 'slot_taken')} bookings refused with 409 slot_taken")
    print(f"requests:            {responses} responses = {responses / result.elapsed:.1f} requests/s")
    print_responses(tally)
    print(f"5xx responses:       {server_errors(tally)}")
    print(f"connection errors:   {sum(tally.errors.values())}"
          + "".join(f"\n  {kind} {name}: {n}" for (kind, name), n in sorted(tally.errors.items())))
    per_request = result.server_cpu_ms / responses if responses else float("nan")
    print(f"server CPU:          {per_request:.2f} ms per request (gunicorn worker: "
          f"{result.server_cpu_ms / 1000:.1f} s = {result.server_cpu_ms / 10 / result.elapsed:.0f}% of a core)")
    booked_per_s = booked / result.elapsed
    print(f"the floor:           {floor.cpu_ms_per_request:.2f} ms CPU per request, {floor.wrk.rps:.1f} req/s "
          f"(bench/floor_app.py: a JWT and the user by id, same server set-up, same run)")
    print(f"ratios to the floor: CPU per request {per_request / floor.cpu_ms_per_request:.2f}x (target <= 3x); "
          f"requests/s {responses / result.elapsed / floor.wrk.rps:.2f}x; bookings/s {booked_per_s / floor.wrk.rps:.2f}x"
          f" the floor's req/s")
    print(f"load generator CPU:  {result.client_cpu_s:.1f} s = {result.client_cpu_s * 100 / result.elapsed:.0f}% "
          f"of a core (this script, on the same machine)")
    print()
    verdict = "PASS" if integrity.double_bookings == 0 else "FAIL"
    print(f"double bookings:     {integrity.double_bookings} overlapping pairs of active appointments: {verdict}")
    print(f"appointments stored: {integrity.stored} ({integrity.active} active)")
    print(f"audit trail:         {integrity.audit_chain}: {'PASS' if integrity.audit_intact else 'FAIL'}")



def server_errors(tally):
    return sum(n for (_, status, _), n in tally.responses.items() if status >= 500)


# --- main ----------------------------------------------------------------------------------------------------------

def run(args, stack):
    work_dir, env = prepare_database(args, stack, APP_SETTINGS)
    create_admin(env)

    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    servers = []
    try:
        with ExitStack() as server_stack:
            app = server_stack.enter_context(running_server("pawmanity", "wsgi:app", cwd=REPO, env=env,
                                                            log_dir=work_dir, ready_path=f"{API}/health"))
            servers.append(app)
            floor = start_floor(server_stack, env, work_dir)
            servers.append(floor)
            print(f"setting up {DOCTORS} doctors and {args.clients} clients through the API ...", flush=True)
            doctors, clients = set_up(app.base_url, args.clients)
            check_booking_works(app.base_url, clients[0], doctors[-1])
            print(f"the authenticated floor (bench/floor_app.py), 5 s of wrk; {machine_load()} ...", flush=True)
            floor_result = measure_floor(floor, clients[0].token, work_dir)
            print(f"booking: {args.clients} clients for {args.duration} s ...", flush=True)
            result = run_load(app, doctors, clients, args.duration)
            print(f"after the load: {machine_load()}")
    finally:
        # After the server stopped, so that errors while shutting down are seen too.
        print_log_problems(servers)
        for server in servers:
            print_log_exceptions(server)
            if args.keep_log:
                shutil.copyfile(server.log_path, args.keep_log)
                print(f"{server.name} log kept as {args.keep_log}")
    integrity = check_database(args.database_url, env)
    print_report(result, integrity, floor_result)
    return (integrity.double_bookings == 0 and integrity.audit_intact and not server_errors(result.tally)
            and not result.tally.errors)


def main(argv=None):
    return run_bench("booking_bench", run, parse_args(argv))

if __name__ == "__main__":
    sys.exit(main())
