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
import json
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass

from harness import (
    REPO,
    BenchError,
    add_service_arguments,
    check_service_arguments,
    cpu_ticks,
    http_json,
    log_tail,
    prepare_database,
    print_log_problems,
    running_server,
    ticks_to_ms,
    worker_pid,
)

BENCH_EMAIL = "bench.patient@example.com"
BENCH_PASSWORD = "bench passphrase 2026"

ME_TARGET_RATIO = 0.40
LOGIN_TARGET_RPS = 20.0

WRK_GRACE = 30  # seconds wrk may take beyond --duration before it is killed


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass
class Measurement:
    label: str
    connections: int
    wrk: WrkResult
    cpu_ms_per_request: float


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


def require_wrk():
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed. Install it with:  apt-get update && apt-get install wrk")
    return path


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


# --- wrk -----------------------------------------------------------------------------------------------------------

def lua_string(text):
    """A Lua long-bracket literal for any text."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_lua(directory, name, *, method="GET", body=None, headers=None):
    lines = [f"wrk.method = {lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(json.dumps(body))}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[ {lua_string(key)} ] = {lua_string(value)}")  # spaced: "[[[" would misparse
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(wrk, url, *, duration, connections, threads, script=None):
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + WRK_GRACE)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE} s: {' '.join(command)}") from None
    if result.returncode != 0 or result.stderr.strip():
        # wrk reports a broken Lua script on stderr and then carries on without it, exiting 0.
        raise BenchError(f"wrk failed (exit {result.returncode}): {result.stderr.strip() or result.stdout}")
    return result.stdout


DURATION_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"unexpected wrk duration: {text!r}")
    return float(match.group(1)) * DURATION_UNITS_MS[match.group(2)]


def parse_wrk(output):
    """The numbers this benchmark reports, from wrk's --latency text output."""
    def find(pattern, default=None):
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            if default is not None:
                return default
            raise BenchError(f"could not find {pattern!r} in wrk's output:\n{output}")
        return match.groups()

    requests = find(r"^\s*(\d+) requests in ")[0]
    socket_errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", ("0",) * 4)
    return WrkResult(
        requests=int(requests),
        rps=float(find(r"^Requests/sec:\s+([\d.]+)")[0]),
        p50_ms=parse_duration_ms(find(r"^\s+50%\s+(\S+)")[0]),
        p99_ms=parse_duration_ms(find(r"^\s+99%\s+(\S+)")[0]),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)", ("0",))[0]),
        socket_errors=sum(int(n) for n in socket_errors),
    )


def measure(wrk, server, label, url, *, args, connections, script=None):
    """Warm up, then one measured wrk run with the worker's CPU time read around it."""
    if args.warmup:
        run_wrk(wrk, url, duration=args.warmup, connections=connections, threads=args.threads, script=script)
    pid = worker_pid(server)
    before = cpu_ticks(pid)
    output = run_wrk(wrk, url, duration=args.duration, connections=connections, threads=args.threads,
                     script=script)
    after = cpu_ticks(pid)
    if worker_pid(server) != pid:
        raise BenchError(f"{server.name}'s worker was replaced during the run:\n{log_tail(server.log_path)}")
    result = parse_wrk(output)
    cpu_ms = ticks_to_ms(after - before)
    return Measurement(label=label, connections=connections, wrk=result,
                       cpu_ms_per_request=cpu_ms / result.requests if result.requests else float("nan"))


# --- report --------------------------------------------------------------------------------------------------------

def print_table(measurements):
    header = (f"{'endpoint':<28} {'conns':>5} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'non-2xx':>8} {'sock err':>8} {'CPU ms/req':>10}")
    print(header)
    print("-" * len(header))
    for m in measurements:
        r = m.wrk
        print(f"{m.label:<28} {m.connections:>5} {r.requests:>9} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.non_2xx:>8} {r.socket_errors:>8} {m.cpu_ms_per_request:>10.3f}")


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
