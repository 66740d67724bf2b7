"""The hot reads' CPU per request inside one process, beside the authenticated floor's: where list_bench.py's figures
go, with less noise from the shared cores (no load generator, no gevent hub, only this process's CPU time).

Run from the repository root:

    .venv/bin/python bench/read_profile.py [--requests 300] [--profile 25] [--database-url URL] [--redis-url URL]

What it does, all on 127.0.0.1:
  1. re-creates the bench database and sets up, through a served PAWMANITY (`gunicorn -k gevent -w 1`), the same
     data as list_bench.py: a patient account with 20 patients and 20 appointments;
  2. builds in this process the production app (`create_app()` and `warm_up`, as wsgi.py does) and the authenticated
     floor (bench/floor_app.py), both on that database, and drives each through Flask's test client with the
     patient's token: GET /me on the floor, GET /api/v1/auth/me, /api/v1/appointments?per_page=20 and
     /api/v1/patients?per_page=20 on PAWMANITY;
  3. per endpoint, after a warm-up, times --requests requests with time.process_time() (this process's CPU, all
     threads: the test client's own work is in every figure, the floor's too) and counts the SQL statements each
     request sends and how many of them missed SQLAlchemy's compiled-statement cache;
  4. prints CPU per request and its ratio to the floor's; with --profile N, also the N functions with the most
     cumulative and own time under cProfile for each PAWMANITY endpoint (cProfile's overhead inflates the times
     there, so read them as shares, and the table above as the cost).

The access log lines go to /dev/null (still formatted and written, as in production).
"""

import argparse
import cProfile
import importlib
import io
import logging
import os
import pstats
import sys
import time

from booking_bench import APP_SETTINGS, create_admin
from harness import (
    REPO,
    add_service_arguments,
    check_service_arguments,
    machine_load,
    prepare_database,
    run_bench,
    running_server,
)
from list_bench import ITEMS, set_up

WARMUP_REQUESTS = 30


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint (default 300)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the top N functions under cProfile per PAWMANITY endpoint (default: none)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.profile < 0:
        parser.error("--requests must be >= 1 and --profile >= 0")
    check_service_arguments(parser, args)
    return args


class StatementCounter:
    """SQL statements sent, and how many were compiled afresh (not taken from the compiled cache)."""

    def __init__(self, engine):
        from sqlalchemy import event
        from sqlalchemy.engine.interfaces import CacheStats

        self.cache_hit = CacheStats.CACHE_HIT
        self.sent = self.compiled = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, _statement, _parameters, context, _executemany):
        self.sent += 1
        # Anything but a cache hit (a miss, a statement with no cache key, caching disabled) was compiled afresh.
        if context is not None and context.cache_hit is not self.cache_hit:
            self.compiled += 1


def time_requests(client, path, headers, n, counter=None, after_batch=None):
    for _ in range(WARMUP_REQUESTS):
        answer = client.get(path, headers=headers)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.get_data(as_text=True)[:500]}")
    sent_before = compiled_before = 0
    if counter is not None:
        sent_before, compiled_before = counter.sent, counter.compiled
    started = time.process_time()
    for _ in range(n):
        client.get(path, headers=headers)
    if after_batch is not None:
        after_batch()
    cpu_ms = (time.process_time() - started) * 1000 / n
    if counter is None:
        return cpu_ms, None, None
    return cpu_ms, (counter.sent - sent_before) / n, (counter.compiled - compiled_before) / n


def print_profile(client, path, headers, n, top):
    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting for PostgreSQL
    profiler.enable()
    for _ in range(n):
        client.get(path, headers=headers)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(f"\n--- GET {path}: top {top} by {order} ({n} requests) ---")
        print(text[text.index("   ncalls"):].rstrip())


def run(args, stack):
    work_dir, env = prepare_database(args, stack, APP_SETTINGS)
    create_admin(env)
    print("setting up the data through a served PAWMANITY ...", flush=True)
    with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir, ready_path="/api/v1/health"
                        ) as server:
        token = set_up(server.base_url)
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    from pawmanity import create_app, warm_up
    from pawmanity.audit import trail
    from pawmanity.core.extensions import db

    app = create_app()
    warm_up(app)
    # A served worker seals the audit chain in batches (the commits of AUDIT_CHAIN_DELAY_MS at a time, in a green
    # thread after the responses); the test client has no green loop and would seal after every single commit. So
    # here the chainer runs once after each endpoint's timed requests, inside the timing: its CPU and its statements
    # are in the figures, shared by the requests whose events it seals.
    app.config["AUDIT_CHAIN_AFTER_COMMIT"] = False
    access_log = logging.getLogger("pawmanity.access")
    devnull = stack.enter_context(open(os.devnull, "w"))
    for handler in access_log.handlers:
        handler.setStream(devnull)
    floor_app = importlib.import_module("floor_app")
    headers = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        counter = StatementCounter(db.engine)
    app_client, floor_client = app.test_client(), floor_app.app.test_client()
    print(f"timing {args.requests} requests per endpoint in this process; {machine_load()}", flush=True)
    floor_cpu, _, _ = time_requests(floor_client, "/me", headers, args.requests)
    paths = ["/api/v1/auth/me", f"/api/v1/appointments?per_page={ITEMS}", f"/api/v1/patients?per_page={ITEMS}"]
    def seal_the_batch():
        with app.app_context():
            trail.chain_pending(wait=True)

    rows = [(path, *time_requests(app_client, path, headers, args.requests, counter, seal_the_batch))
            for path in paths]
    print(f"\n{'endpoint':<34} {'CPU ms/req':>10} {'x floor':>8} {'SQL/req':>8} {'compiled/req':>12}")
    print(f"{'floor: JWT + user by id':<34} {floor_cpu:>10.3f} {1:>8.2f} {'':>8} {'':>12}")
    for path, cpu, sent, compiled in rows:
        print(f"{'GET ' + path:<34} {cpu:>10.3f} {cpu / floor_cpu:>8.2f} {sent:>8.1f} {compiled:>12.2f}")
    print(f"after the runs: {machine_load()}")
    if args.profile:
        for path in paths:
            print_profile(app_client, path, headers, min(args.requests, 200), args.profile)
    return True


def main(argv=None):
    return run_bench("read_profile", run, parse_args(argv))


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
