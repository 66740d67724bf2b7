"""Authentication throughput of PAWMANITY, served the production way, against a bare Flask ceiling.

Run from the repository root:

    .venv/bin/python bench/auth_bench.py [--duration 10] [--connections 16] [--login-connections 4]
                                         [--database-url URL] [--redis-url URL]

What it does, all on 127.0.0.1:
  1. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench" so that a DATABASE_URL naming a real database is never wiped), runs the
     migrations (`flask db upgrade`) and, once the app is up, registers one patient through the API;
  2. starts PAWMANITY as `gunicorn -k gevent -w 1 wsgi:app` with PAWMANITY_CONFIG=production, and the bare Flask app
     of bench/bare_app.py the same way;
  3. loads each endpoint with wrk (`apt-get install wrk`) after a short warm-up:
       GET  /                      on the bare app (the ceiling)
       GET  /api/v1/auth/me        with a bearer token (JWT check, blocklist check, user lookup)
       POST /api/v1/auth/login     argon2id verification (m=19 MiB, t=2), a new session and an audit row
  4. prints, per endpoint, requests/second, p50 and p99 latency, non-2xx responses, socket errors and the server's
     CPU time per request (utime+stime of the gunicorn worker from /proc, before and after the run);
  5. checks the targets: /auth/me at >= 40% of the bare ceiling's requests/second, login at >= 20 requests/second;
  6. stops both servers and drops the database, also on Ctrl-C or an error.

The login rate limit is raised to 100000 per minute for the benchmark so that it measures the server, not the limiter.
"""

import argparse
import sys
from contextlib import ExitStack

from harness import (
    REPO,
    BenchError,
    add_service_arguments,
    check_service_arguments,
    http_json,
    measure,
    prepare_database,
    print_log_problems,
    print_table,
    require_wrk,
    running_server,
    write_lua,
)

BENCH_EMAIL = "bench.patient@example.com"
BENCH_PASSWORD = "bench passphrase 2026"

ME_TARGET_RATIO = 0.40
LOGIN_TARGET_RPS = 20.0

# --- command line --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for GET runs (default 16)")
    parser.add_argument("--login-connections", type=int, default=4,
                        help="wrk connections for the login run; argon2id is CPU-bound (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured seconds of load before each run (default 2)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be >= 1 and --warmup >= 0")
    if min(args.connections, args.login_connections) < args.threads:
        parser.error("connections must be at least --threads (wrk opens at least one connection per thread)")
    check_service_arguments(parser, args)
    return args


# --- HTTP set-up calls ---------------------------------------------------------------------------------------------

def register_bench_user(base_url):
    status, body = http_json("POST", f"{base_url}/api/v1/auth/register", {
        "email": BENCH_EMAIL, "password": BENCH_PASSWORD, "full_name": "Bench Patient", "role": "patient",
    })
    if status != 201:
        raise BenchError(f"registering the bench user answered {status}: {body}")


def access_token(base_url):
    status, body = http_json("POST", f"{base_url}/api/v1/auth/login",
                             {"email": BENCH_EMAIL, "password": BENCH_PASSWORD})
    if status != 200:
        raise BenchError(f"signing in the bench user answered {status}: {body}")
    return body["access_token"]


def check_me(base_url, token):
    status, body = http_json("GET", f"{base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise BenchError(f"GET /api/v1/auth/me answered {status}: {body}")


# --- report --------------------------------------------------------------------------------------------------------

def verdict(met, measurement_list):
    if any(m.wrk.non_2xx or m.wrk.socket_errors for m in measurement_list):
        return "NOT MET (errors during the run)"
    return "MET" if met else "NOT MET"


def print_targets(bare, me, login):
    ratio = me.wrk.rps / bare.wrk.rps if bare.wrk.rps else 0.0
    print(f"/auth/me rps / bare rps = {me.wrk.rps:.1f} / {bare.wrk.rps:.1f} = {ratio:.1%}  "
          f"(target >= {ME_TARGET_RATIO:.0%}): {verdict(ratio >= ME_TARGET_RATIO, [bare, me])}")
    print(f"login = {login.wrk.rps:.1f} req/s  (target >= {LOGIN_TARGET_RPS:.0f} req/s): "
          f"{verdict(login.wrk.rps >= LOGIN_TARGET_RPS, [login])}")


# --- main ----------------------------------------------------------------------------------------------------------

def run(args, wrk, stack):
    work_dir, env = prepare_database(args, stack)

    print("starting PAWMANITY and the bare Flask app (gunicorn -k gevent -w 1) ...", flush=True)
    servers = []
    try:
        with ExitStack() as server_stack:
            app = server_stack.enter_context(running_server("pawmanity", "wsgi:app", cwd=REPO, env=env,
                                                            log_dir=work_dir, ready_path="/api/v1/health"))
            servers.append(app)
            bare = server_stack.enter_context(running_server("bare-flask", "bare_app:app", cwd=REPO / "bench",
                                                             env=env, log_dir=work_dir, ready_path="/"))
            servers.append(bare)
            results = benchmark(args, wrk, app, bare, work_dir)
    finally:
        # After the servers stopped, so that errors while shutting down are seen too.
        print_log_problems(servers)

    print()
    print_table(results)
    print()
    print_targets(*results)


def benchmark(args, wrk, app, bare, work_dir):
    register_bench_user(app.base_url)
    token = access_token(app.base_url)
    check_me(app.base_url, token)
    me_script = write_lua(work_dir, "me", headers={"Authorization": f"Bearer {token}"})
    login_script = write_lua(work_dir, "login", method="POST", body={"email": BENCH_EMAIL, "password": BENCH_PASSWORD})

    print(f"measuring: {args.warmup} s warm-up + {args.duration} s per endpoint, wrk -t{args.threads}", flush=True)
    return [
        measure(wrk, bare, "GET / (bare Flask)", bare.base_url + "/", args=args, connections=args.connections),
        measure(wrk, app, "GET /api/v1/auth/me", app.base_url + "/api/v1/auth/me", args=args,
                connections=args.connections, script=me_script),
        measure(wrk, app, "POST /api/v1/auth/login", app.base_url + "/api/v1/auth/login", args=args,
                connections=args.login_connections, script=login_script),
    ]


def main(argv=None):
    args = parse_args(argv)
    try:
        wrk = require_wrk()
        with ExitStack() as stack:
            run(args, wrk, stack)
    except BenchError as error:
        print(f"auth_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("auth_bench: interrupted; servers stopped and the bench database dropped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
