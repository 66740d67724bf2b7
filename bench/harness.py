"""Shared plumbing of the benchmarks in bench/: a throw-away PostgreSQL database, PAWMANITY served the production way
(`gunicorn -k gevent -w 1`), the worker's CPU time from /proc, the gunicorn log, and small JSON calls for set-up.

Everything here talks to 127.0.0.1 only, and drops only databases whose name contains "bench".
"""

import argparse
import base64
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/pawmanity_bench"
HOST = "127.0.0.1"

SECRET_KEY = "auth-bench-secret-key-not-for-production-0123456789"

SERVER_START_TIMEOUT = 60
SERVER_STOP_TIMEOUT = 15
MIGRATION_TIMEOUT = 180
CLI_TIMEOUT = 120


class BenchError(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    workers: int = 1

    @property
    def base_url(self):
        return f"http://{HOST}:{self.port}"


# --- command line --------------------------------------------------------------------------------------------------

def add_service_arguments(parser):
    """--database-url and --redis-url, as every benchmark takes them."""
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
                        help="PostgreSQL URL; its database is dropped and re-created (default: env DATABASE_URL, "
                             f"else {DEFAULT_DATABASE_URL})")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or None,
                        help="Redis URL for the app (default: env REDIS_URL, else none: in-process stores)")


def check_service_arguments(parser, args):
    check_loopback(parser, "--database-url", args.database_url)
    check_bench_database(parser, args.database_url)
    if args.redis_url:
        check_loopback(parser, "--redis-url", args.redis_url)


def check_loopback(parser, option, url):
    """The benchmark only ever talks to this machine."""
    host = conninfo_to_dict(url).get("host") if option == "--database-url" else urllib.parse.urlsplit(url).hostname
    if host not in (None, "", "localhost", "::1") and not str(host).startswith("127."):
        parser.error(f"{option} must point at this machine (127.0.0.1 or localhost), not {host!r}")


def check_bench_database(parser, url):
    """DATABASE_URL may well name a developer's own database, and this one gets dropped."""
    name = conninfo_to_dict(url).get("dbname") or ""
    if "bench" not in name:
        parser.error(f"refusing to drop and re-create database {name!r}: use one whose name contains 'bench', "
                     f"e.g. --database-url {DEFAULT_DATABASE_URL}")


# --- database ------------------------------------------------------------------------------------------------------

def database_name(url):
    return conninfo_to_dict(url)["dbname"]


def maintenance_sql(url, *statements):
    """Run statements on the same server as `postgres`'s database, outside any transaction (as DROP DATABASE needs)."""
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def reset_database(url):
    name = sql.Identifier(database_name(url))
    maintenance_sql(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name),
                    sql.SQL("CREATE DATABASE {}").format(name))


def drop_database(url):
    maintenance_sql(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(url))))


def bench_key_file(instance_dir):
    """Throwaway field encryption keys for the bench's server and commands (the format of
    pawmanity/core/encryption/fields.py's key file; written here so the harness needs no app import)."""
    path = Path(instance_dir) / "field-keys.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        new_key = lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()  # noqa: E731
        path.write_text(json.dumps({"keys": [{"id": "bench1", "key": new_key()}], "blind_index_key": new_key()}))
        path.chmod(0o600)
    return str(path)


def app_environment(args, instance_dir, extra=None):
    """The environment of the server and of `flask` commands: production config on the bench database."""
    env = dict(os.environ)
    env.update({
        "PAWMANITY_CONFIG": "production",
        "DATABASE_URL": args.database_url,
        "PAWMANITY_INSTANCE_DIR": str(instance_dir),
        # Load comes from a few addresses and accounts: the abuse limits would measure themselves, not the work.
        "PAWMANITY_LOGIN_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_REGISTER_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_DIAGNOSIS_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_UPLOAD_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_UPLOAD_BYTES_RATE_LIMIT": "100000000000 per minute",
        "PAWMANITY_CHAT_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_TYPING_RATE_LIMIT": "100000 per minute",
        "PAWMANITY_MFA_REQUIRED": "false",  # bench doctors and admins sign in with a password alone
        "SECRET_KEY": SECRET_KEY,
        "FLASK_APP": "wsgi",
        # Identifiers are stored encrypted; the bench's throwaway keys live with its instance directory.
        "PAWMANITY_FIELD_KEY_FILE": bench_key_file(instance_dir),
    })
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    # Measure the production defaults (password hashing, plugins), whatever the caller's shell says.
    for name in ("PAWMANITY_ARGON2_MEMORY_KIB", "PAWMANITY_ARGON2_TIME_COST", "PAWMANITY_PLUGINS"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def flask_command(env, *arguments, timeout=CLI_TIMEOUT):
    """Run `flask ARGUMENTS` in the repository; its output, or BenchError when it fails."""
    return _run_in_repo([str(VENV_BIN / "flask"), *arguments], f"flask {' '.join(arguments)}", env, timeout)


def python_script(env, script, *arguments, timeout=CLI_TIMEOUT):
    """Run `python SCRIPT ARGUMENTS` (the venv's Python) in the repository with the app's environment, so that the
    script sees the server's settings (database, SECRET_KEY); its output, or BenchError when it fails."""
    name = Path(script).name
    return _run_in_repo([sys.executable, str(script), *arguments], f"python {name} {' '.join(arguments)}".strip(),
                        env, timeout)


def _run_in_repo(command, label, env, timeout):
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{label}` did not finish in {timeout} s") from None
    if result.returncode != 0:
        raise BenchError(f"`{label}` failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def run_migrations(env):
    flask_command(env, "db", "upgrade", timeout=MIGRATION_TIMEOUT)


def prepare_database(args, stack, extra_env=None):
    """A temporary directory and the app's environment; the bench database re-created and migrated.

    The directory is removed and the database dropped when `stack` closes.
    """
    work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pawmanity-bench-")))
    env = app_environment(args, work_dir / "instance", extra_env)
    print(f"resetting database {database_name(args.database_url)} and running migrations ...", flush=True)
    reset_database(args.database_url)
    stack.callback(drop_database, args.database_url)
    run_migrations(env)
    return work_dir, env


# --- servers -------------------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@functools.cache
def gunicorn_extra_options():
    """Gunicorn >= 27 opens a control socket under ~/.gunicorn, one path shared by every server: not wanted here."""
    help_text = subprocess.run([str(VENV_BIN / "gunicorn"), "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    return ["--no-control-socket"] if "--no-control-socket" in help_text else []


def start_gunicorn(name, app_spec, *, cwd, env, log_dir, workers=1):
    port = free_port()
    log_path = log_dir / f"{name}.log"
    command = [str(VENV_BIN / "gunicorn"), "-k", "gevent", "-w", str(workers), "-b", f"{HOST}:{port}",
               *gunicorn_extra_options(), app_spec]
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl-C reaches only this script, which then stops the server in order.
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Server(name=name, process=process, port=port, log_path=log_path, workers=workers)


def stop_server(server):
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=SERVER_STOP_TIMEOUT)


@contextmanager
def running_server(name, app_spec, *, cwd, env, log_dir, ready_path, workers=1):
    server = start_gunicorn(name, app_spec, cwd=cwd, env=env, log_dir=log_dir, workers=workers)
    try:
        wait_until_ready(server, ready_path)
        yield server
    finally:
        stop_server(server)


def wait_until_ready(server, path):
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.process.returncode} while starting:\n"
                             f"{log_tail(server.log_path)}")
        try:
            status, _ = http_json("GET", server.base_url + path, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} did not answer 200 on {path} within {SERVER_START_TIMEOUT} s:\n"
                     f"{log_tail(server.log_path)}")


def worker_pid(server):
    """The pid of the gunicorn worker: the master's only child."""
    return worker_pids(server, expected=1)[0]


def worker_pids(server, expected=None):
    """The pids of the gunicorn workers (the master's children), once there are as many as the server was started
    with."""
    expected = expected or server.workers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = []
        for children_file in Path(f"/proc/{server.process.pid}/task").glob("*/children"):
            children += [int(pid) for pid in children_file.read_text().split()]
        if len(children) == expected:
            return sorted(children)
        time.sleep(0.1)
    raise BenchError(f"{server.name}: expected {expected} gunicorn worker(s), found {children}")


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (all of its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may contain spaces
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def backend_ticks(conn):
    """utime + stime of each PostgreSQL backend serving the database of `conn` (but its own), by pid.

    PostgreSQL runs on this machine too, so its CPU time shares the cores with the server and the load generator.
    `conn` is opened before the load (a busy server may take every connection the database allows), in autocommit
    mode (pg_stat_activity is read once per transaction).
    """
    pids = [row[0] for row in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    ticks = {}
    for pid in pids:
        try:
            ticks[pid] = cpu_ticks(pid)
        except OSError:  # the backend ended meanwhile
            pass
    return ticks


def machine_busy_ticks():
    """CPU time all processes of the machine spent busy (all cores), in clock ticks, from the first line of /proc/stat.

    Less what the benchmark's own processes used, it tells whether something else shared the cores meanwhile.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return user + nice + system + irq + softirq + steal


def ticks_to_ms(ticks):
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def log_tail(path, lines=30):
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def log_problems(path):
    """Lines of a gunicorn log that report an error, a traceback or a worker restart."""
    pattern = re.compile(r"Traceback|\[ERROR\]|\[CRITICAL\]|WORKER TIMEOUT|Worker .* (exited|was sent)")
    return [line for line in path.read_text(errors="replace").splitlines() if pattern.search(line)]


def log_exceptions(path):
    """How often each exception ended a traceback in a log: {"module.Error: first line of its message": count}.

    Of a chain ("The above exception was the direct cause ...", "During handling ..."), only the last one counts.
    """
    found = Counter()
    last, in_traceback = None, False
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            last, in_traceback = line[:200], False
            found[last] += 1
        elif last and line.startswith(("The above exception was", "During handling of the above exception")):
            found[last] -= 1
            last = None
    return +found  # drops the chained ones, now at zero


def print_log_problems(servers):
    for server in servers:
        problems = log_problems(server.log_path)
        if problems:
            print(f"\n{server.name} log reported {len(problems)} problem line(s); its last lines:")
            print(log_tail(server.log_path))
        else:
            print(f"{server.name} log: no errors, tracebacks or worker restarts")


# --- HTTP set-up calls ---------------------------------------------------------------------------------------------

def http_json(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def expect(status, body, expected, what):
    """The body of a set-up call that answered `expected`, else BenchError naming the call."""
    if status != expected:
        raise BenchError(f"{what} answered {status} (expected {expected}): {body}")
    return body


def print_log_exceptions(server):
    """Count the exceptions that ended tracebacks in a server's log."""
    exceptions = log_exceptions(server.log_path)
    if exceptions:
        print(f"{server.name} log: exceptions that ended a traceback:")
        for line, n in exceptions.most_common():
            print(f"  {n:>5} x {line}")


def run_bench(name, run, args, *, interrupted="server stopped and the bench database dropped"):
    """Run a benchmark's `run(args, stack)`; exit 0 when it reports success, 1 on failure, 130 on Ctrl-C."""
    try:
        with ExitStack() as stack:
            ok = run(args, stack)
    except BenchError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    return 0 if ok else 1


# --- wrk -----------------------------------------------------------------------------------------------------------

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

def require_wrk():
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed. Install it with:  apt-get update && apt-get install wrk")
    return path


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
    """Warm up, then one measured wrk run with the workers' CPU time read around it."""
    if args.warmup:
        run_wrk(wrk, url, duration=args.warmup, connections=connections, threads=args.threads, script=script)
    pids = worker_pids(server)
    before = sum(cpu_ticks(pid) for pid in pids)
    output = run_wrk(wrk, url, duration=args.duration, connections=connections, threads=args.threads,
                     script=script)
    after = sum(cpu_ticks(pid) for pid in pids)
    if worker_pids(server) != pids:
        raise BenchError(f"{server.name}'s worker was replaced during the run:\n{log_tail(server.log_path)}")
    result = parse_wrk(output)
    cpu_ms = ticks_to_ms(after - before)
    return Measurement(label=label, connections=connections, wrk=result,
                       cpu_ms_per_request=cpu_ms / result.requests if result.requests else float("nan"))


def print_table(measurements):
    header = (f"{'endpoint':<28} {'conns':>5} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'non-2xx':>8} {'sock err':>8} {'CPU ms/req':>10}")
    print(header)
    print("-" * len(header))
    for m in measurements:
        r = m.wrk
        print(f"{m.label:<28} {m.connections:>5} {r.requests:>9} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.non_2xx:>8} {r.socket_errors:>8} {m.cpu_ms_per_request:>10.3f}")


def print_ratio_table(measurements, floor):
    """Every figure beside the authenticated floor's, as a ratio: CPU per request (lower is better) and requests per
    second (higher is better) over the floor's."""
    header = (f"{'endpoint':<34} {'req/s':>8} {'x floor':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} "
              f"{'CPU ms/req':>10} {'x floor':>8}")
    print(header)
    print("-" * len(header))
    for m in measurements:
        r = m.wrk
        rps_ratio = r.rps / floor.wrk.rps if floor.wrk.rps else float("nan")
        cpu_ratio = m.cpu_ms_per_request / floor.cpu_ms_per_request if floor.cpu_ms_per_request else float("nan")
        print(f"{m.label:<34} {r.rps:>8.1f} {rps_ratio:>8.2f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
              f"{r.non_2xx + r.socket_errors:>7} {m.cpu_ms_per_request:>10.3f} {cpu_ratio:>8.2f}")


def machine_load():
    """The 1-minute load average and the number of cores, for the report: the cores are shared."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


# --- the authenticated floor ---------------------------------------------------------------------------------------

def start_floor(stack, env, log_dir):
    """bench/floor_app.py served like PAWMANITY (gunicorn, one gevent worker) on the same database, until `stack`
    closes: the least any authenticated endpoint costs (verify a JWT, select the user by primary key)."""
    return stack.enter_context(running_server("floor", "floor_app:app", cwd=REPO / "bench", env=env, log_dir=log_dir,
                                              ready_path="/"))


def measure_floor(floor, token, work_dir, *, duration=5, connections=16, threads=2, warmup=1):
    """The floor's CPU per request and req/s under wrk, with PAWMANITY's access token `token`."""
    settings = argparse.Namespace(duration=duration, threads=threads, warmup=warmup)
    script = write_lua(work_dir, "floor", headers={"Authorization": f"Bearer {token}"})
    return measure(require_wrk(), floor, "floor: JWT + user by id", floor.base_url + "/me", args=settings,
                   connections=connections, script=script)
