"""Everyday reads of PAWMANITY against the authenticated floor: GET /auth/me, and lists of 20 appointments and 20
patients, each as a ratio to a minimal Flask endpoint that verifies the same JWT and selects its user by primary key.

Run from the repository root:

    .venv/bin/python bench/list_bench.py [--duration 8] [--connections 16] [--workers 1]
                                         [--database-url URL] [--redis-url URL]

What it does, all on 127.0.0.1:
  1. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench"), runs the migrations and creates an admin with `flask create-admin`;
  2. starts, each as `gunicorn -k gevent -w 1` (PAWMANITY with `-w --workers`) on the same database:
       PAWMANITY (`wsgi:app`, PAWMANITY_CONFIG=production),
       the authenticated floor (bench/floor_app.py: flask-jwt-extended + a SQLAlchemy select of the user by id),
       the bare Flask app (bench/bare_app.py: a constant answer, the floor of any request);
  3. sets up through the API a patient account with 19 pets besides its own record (20 patients) and 20 appointments
     with one verified doctor;
  4. loads each endpoint with wrk (`apt-get install wrk`), --connections connections, after a short warm-up:
       GET /me                               on the floor (the patient's token)
       GET /                                 on the bare app
       GET /api/v1/auth/me                   on PAWMANITY
       GET /api/v1/appointments?per_page=20  on PAWMANITY (20 items)
       GET /api/v1/patients?per_page=20      on PAWMANITY (20 items)
  5. prints requests/second, p50/p99 latency, non-2xx and socket errors and the server's CPU time per request (utime
     + stime of its gunicorn workers from /proc, around the run), each with its ratio to the floor's, the machine's
     load average, and the targets of issue 15 (lists <= 2x the floor's CPU per request, /auth/me <= 1.2x);
  6. stops the servers and drops the database, also on Ctrl-C or an error.

With --workers 2 the CPU per request is summed over both workers and req/s shows what the second core buys.
"""

import argparse
import os
import sys
import urllib.parse
from contextlib import ExitStack
from datetime import timedelta

from booking_bench import (
    APP_SETTINGS,
    call,
    create_admin,
    create_doctor,
    next_midnight,
    register,
)
from booking_bench import (
    login as sign_in,
)
from harness import (
    REPO,
    BenchError,
    add_service_arguments,
    check_service_arguments,
    machine_load,
    measure,
    prepare_database,
    print_log_problems,
    print_ratio_table,
    require_wrk,
    run_bench,
    running_server,
    write_lua,
)

ITEMS = 20
LIST_TARGET = 2.0
ME_TARGET = 1.2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run (default 8)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured seconds of load before each run (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers of PAWMANITY (default 1)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--duration and --workers must be >= 1 and --warmup >= 0")
    check_service_arguments(parser, args)
    return args


def set_up(base_url):
    """A patient with 20 patients and 20 appointments; returns the patient's access token."""
    admin_token = sign_in(base_url, "admin-bench@example.com")
    doctor_id = create_doctor(base_url, admin_token, 1)
    token = register(base_url, "owner-bench@example.com", "Owner Bench", "patient")
    pets = [call(base_url, "POST", "/patients", token, {"name": f"Rex {n}", "species": "dog", "sex": "male"},
                      expected=201)["id"] for n in range(ITEMS - 1)]
    day = next_midnight() + timedelta(days=1)
    window = urllib.parse.urlencode({"from": day.isoformat(), "to": (day + timedelta(hours=12)).isoformat(),
                                     "per_page": ITEMS})
    slots = call(base_url, "GET", f"/doctors/{doctor_id}/slots?{window}", token)["items"]
    for pet, slot in zip(pets + pets, slots[:ITEMS]):
        call(base_url, "POST", "/appointments", token, {"doctor_id": doctor_id, "patient_id": pet,
                                                             "start": slot["start"], "type": "video"}, expected=201)
    for path in ("/appointments", "/patients"):
        found = len(call(base_url, "GET", f"{path}?per_page={ITEMS}", token)["items"])
        if found != ITEMS:
            raise BenchError(f"GET {path} lists {found} items, expected {ITEMS}")
    return token


def run(args, stack):
    wrk = require_wrk()
    work_dir, env = prepare_database(args, stack, APP_SETTINGS)  # the per-account booking quota raised
    create_admin(env)
    print(f"starting PAWMANITY (-w {args.workers}), the authenticated floor and the bare Flask app ...", flush=True)
    servers = []
    try:
        with ExitStack() as server_stack:
            def start(name, spec, cwd, ready, workers=1):
                server = server_stack.enter_context(running_server(name, spec, cwd=cwd, env=env, log_dir=work_dir,
                                                                   ready_path=ready, workers=workers))
                servers.append(server)
                return server

            app = start("pawmanity", "wsgi:app", REPO, "/api/v1/health", args.workers)
            floor = start("floor", "floor_app:app", REPO / "bench", "/")
            bare = start("bare-flask", "bare_app:app", REPO / "bench", "/")
            token = set_up(app.base_url)
            script = write_lua(work_dir, "bearer", headers={"Authorization": f"Bearer {token}"})
            print(f"measuring: {args.warmup} s warm-up + {args.duration} s per endpoint, wrk -t{args.threads} "
                  f"-c{args.connections}; {machine_load()}", flush=True)

            def load(server, label, path, with_token=True):
                return measure(wrk, server, label, server.base_url + path, args=args, connections=args.connections,
                               script=script if with_token else None)

            floor_result = load(floor, "floor: JWT + user by id", "/me")
            results = [
                floor_result,
                load(bare, "bare Flask (no auth, no SQL)", "/", with_token=False),
                load(app, "GET /auth/me", "/api/v1/auth/me"),
                load(app, f"GET /appointments ({ITEMS} items)", f"/api/v1/appointments?per_page={ITEMS}"),
                load(app, f"GET /patients ({ITEMS} items)", f"/api/v1/patients?per_page={ITEMS}"),
            ]
    finally:
        print_log_problems(servers)
    print()
    print(f"PAWMANITY workers: {args.workers}; after the runs: {machine_load()}")
    print_ratio_table(results, floor_result)
    print()
    ok = True
    for result, target in zip(results[2:], (ME_TARGET, LIST_TARGET, LIST_TARGET)):
        ratio = result.cpu_ms_per_request / floor_result.cpu_ms_per_request
        errors = result.wrk.non_2xx + result.wrk.socket_errors
        met = ratio <= target and not errors
        ok = ok and not errors
        print(f"{result.label}: {ratio:.2f}x the floor's CPU per request (target <= {target}x): "
              f"{'MET' if met else 'NOT MET'}{f' ({errors} errors)' if errors else ''}")
    return ok


def main(argv=None):
    return run_bench("list_bench", run, parse_args(argv), interrupted="servers stopped and the bench database dropped")


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
