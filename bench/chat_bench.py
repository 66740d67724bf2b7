"""Consultation chat under load: Socket.IO delivery latency, throughput, and no lost or duplicated message.

Run from the repository root:

    .venv/bin/python bench/chat_bench.py [--clients 200] [--rooms 100] [--duration 20] [--rate 1]
                                         [--database-url URL] [--redis-url URL]

What it does, all on 127.0.0.1:
  1. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench"), runs the migrations, and writes --rooms rooms straight to the database through the app's
     models (bench/chat_seed.py): per room a verified doctor, a dog, its owner, and a confirmed appointment that
     started 2 minutes ago; when --clients is more than twice --rooms, the extra clients are further guardians of the
     rooms' dogs, spread evenly. Every account gets an access token signed with the server's SECRET_KEY;
  2. starts PAWMANITY as `gunicorn -k gevent -w 1 wsgi:app` with PAWMANITY_CONFIG=production and the chat rate limit
     raised to 100000 per minute (so that the limiter does not refuse the load);
  3. each room's doctor opens its consultation (POST /api/v1/consultations), then every client connects to the
     Socket.IO namespace /chat over WebSocket (python-socketio's client, a few threads per client) and joins its
     room; one warm-up message per room checks that acknowledgements and broadcasts work;
  4. for --duration seconds every client sends --rate messages per second (open loop: the sends of all clients are
     spread evenly over time and do not wait for acknowledgements), each with a unique client_id and its send time in
     the body; the server stores each one, acknowledges it to the sender, and broadcasts it to the others in the room;
  5. waits up to GRACE seconds for the last acknowledgements and deliveries, then prints: messages stored per second,
     the delivery latency (receipt by a peer - send time) and the acknowledgement latency, p50/p99/max; messages lost
     (acknowledged as stored, but never delivered to a peer by the end of the grace period) and duplicated (the same
     message id delivered twice to one client); the server's CPU time per message (the gunicorn worker's utime+stime
     from /proc) and this script's own CPU time, so that one can tell whether the load generator was the bottleneck;
     and the target: delivery p99 under 100 ms at 200 clients;
  6. checks in PostgreSQL that the messages stored are exactly those acknowledged as stored, that no two share a
     (consultation, seq) or a (consultation, sender, client_id), and that each consultation's numbering has no gap;
  7. stops the server and drops the database, also on Ctrl-C or an error.

The exit status is 0 when nothing was lost, duplicated, refused or inconsistent (the latency target is reported, not
enforced); 1 otherwise.
"""

import argparse
import json
import math
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import socketio

from harness import (
    REPO, BenchError, add_service_arguments, check_service_arguments, cpu_ticks, expect, http_json, log_exceptions,
    log_tail, prepare_database, print_log_problems, python_script, running_server, ticks_to_ms, worker_pid,
)

API = "/api/v1"
NAMESPACE = "/chat"
APP_SETTINGS = {"PAWMANITY_CHAT_RATE_LIMIT": "100000 per minute"}
SEED_SCRIPT = Path(__file__).resolve().parent / "chat_seed.py"

TARGET_CLIENTS = 200
TARGET_P99_MS = 100.0

GRACE = 5.0  # seconds after the last send for acknowledgements and deliveries to arrive
SETUP_THREADS = 16  # connecting and joining in parallel
CONNECT_TIMEOUT = 20
CALL_TIMEOUT = 20
WARMUP_TIMEOUT = 20
MAX_DURATION = 600  # access tokens live 15 minutes: they must still be valid when the last client connects
MAX_SEND_RATE = 5000  # messages per second over all clients; more is beyond what one Python thread can pace
POLL = 0.05


@dataclass
class Member:
    """One client: a participant of one room, with its own Socket.IO connection."""
    index: int
    room: int
    user_id: str
    role: str
    token: str
    consultation_id: str = ""
    client: socketio.Client | None = None


@dataclass
class Room:
    appointment_id: str
    members: list
    consultation_id: str = ""


@dataclass
class Recorder:
    """What the Socket.IO threads saw. Handlers only append (atomic under the GIL); everything is counted later."""
    sends: dict = field(default_factory=dict)  # client_id -> (member index, perf_counter at emit, scheduled lag s)
    acks: list = field(default_factory=list)  # (client_id, perf_counter, ack payload)
    deliveries: list = field(default_factory=list)  # (receiver index, message dict, time.time() at receipt)
    disconnects: list = field(default_factory=list)  # (member index, reason, perf_counter)
    errors: list = field(default_factory=list)  # (member index, "error" event payload)
    send_errors: Counter = field(default_factory=Counter)  # exception name -> count


@dataclass
class LoadResult:
    clients: int
    rooms: int
    sent: int
    send_elapsed: float  # from the first scheduled send to the last send
    last_ack_elapsed: float  # from the first scheduled send to the last acknowledgement
    drained: bool  # every acknowledgement and delivery arrived before the grace period ran out
    measured_elapsed: float  # the span of the CPU measurements: sending, then draining
    server_cpu_ms: float
    client_cpu_s: float
    client_threads: int
    recorder: Recorder


@dataclass
class Analysis:
    sent: int = 0
    acked: int = 0
    stored: int = 0  # acknowledged with created=True
    not_created: int = 0  # acknowledged, but as a message already stored under that client_id
    refused: Counter = field(default_factory=Counter)  # error code of refusing acknowledgements -> count
    unacked: int = 0
    expected_deliveries: int = 0  # stored messages x the other members of their room
    delivered: int = 0  # first deliveries of expected messages
    lost: int = 0
    duplicated: int = 0
    echoed: int = 0  # deliveries of a client's own message back to it (the server skips the sender)
    unexpected: int = 0  # deliveries of a message this client should not have had (other room, not acked)
    delivery_s: list = field(default_factory=list)
    ack_s: list = field(default_factory=list)
    send_lag_s: list = field(default_factory=list)
    stored_ids: set = field(default_factory=set)


@dataclass
class Integrity:
    rows: int
    duplicate_seq: int
    duplicate_client_id: int
    numbering_gaps: int  # consultations whose message_count or seqs do not run 1..count
    rows_not_acked: int  # rows whose id no acknowledgement announced
    acked_not_stored: int  # acknowledged message ids with no row


# --- command line --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="Socket.IO clients (default 200)")
    parser.add_argument("--rooms", type=int, default=100,
                        help="consultations; each has a doctor and one or more guardians (default 100)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of sending (default 20)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per client (default 1)")
    parser.add_argument("--keep-log", type=Path, metavar="PATH",
                        help="copy the server's gunicorn log to PATH at the end (it is otherwise deleted)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.rooms < 1:
        parser.error("--rooms must be >= 1")
    if args.clients < 2 * args.rooms:
        parser.error("--clients must be at least twice --rooms: every room has a doctor and a guardian")
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be between 1 and {MAX_DURATION} seconds (access tokens live 15 minutes)")
    if args.rate <= 0 or args.rate * args.clients > MAX_SEND_RATE:
        parser.error(f"--rate must be > 0, and --rate x --clients at most {MAX_SEND_RATE} messages per second")
    check_service_arguments(parser, args)
    return args


# --- set-up --------------------------------------------------------------------------------------------------------

def room_sizes(clients, rooms):
    """Members per room: as even as possible, every room at least 2."""
    base, extra = divmod(clients, rooms)
    return [base + (1 if room < extra else 0) for room in range(rooms)]


def seed(env, clients, rooms):
    sizes = room_sizes(clients, rooms)
    output = python_script(env, SEED_SCRIPT, str(rooms), *map(str, sizes))
    seeded = json.loads(output.strip().splitlines()[-1])
    members, result = [], []
    for number, room in enumerate(seeded):
        people = []
        for person in room["members"]:
            member = Member(index=len(members), room=number, user_id=person["user_id"], role=person["role"],
                            token=person["token"])
            members.append(member)
            people.append(member)
        result.append(Room(appointment_id=room["appointment_id"], members=people))
    return result, members


def open_consultation(base_url, room):
    doctor = room.members[0]
    status, body = http_json("POST", f"{base_url}{API}/consultations", {"appointment_id": room.appointment_id},
                             headers={"Authorization": f"Bearer {doctor.token}"})
    room.consultation_id = expect(status, body, 201, f"opening the consultation of appointment "
                                                     f"{room.appointment_id}")["id"]
    for member in room.members:
        member.consultation_id = room.consultation_id


def connect(base_url, member, recorder):
    client = socketio.Client(reconnection=False)
    index = member.index
    client.on("message", lambda data: recorder.deliveries.append((index, data, time.time())), namespace=NAMESPACE)
    client.on("error", lambda data: recorder.errors.append((index, data)), namespace=NAMESPACE)
    client.on("disconnect", lambda reason=None: recorder.disconnects.append((index, reason, time.perf_counter())),
              namespace=NAMESPACE)
    try:
        client.connect(base_url, namespaces=[NAMESPACE], auth={"token": member.token}, transports=["websocket"],
                       wait_timeout=CONNECT_TIMEOUT)
    except socketio.exceptions.ConnectionError as error:
        raise BenchError(f"client {index} ({member.role}) could not connect to {NAMESPACE}: {error}") from None
    member.client = client
    ack = client.call("join", {"consultation_id": member.consultation_id}, namespace=NAMESPACE, timeout=CALL_TIMEOUT)
    if not (isinstance(ack, dict) and ack.get("ok")):
        raise BenchError(f"client {index} could not join consultation {member.consultation_id}: {ack}")


def disconnect(member):
    if member.client is not None:
        try:
            member.client.disconnect()
        except Exception:  # noqa: BLE001 - closing what is already broken is not worth a report
            pass


def warm_up(rooms, recorder):
    """One message per room, sent by its doctor and waited for: checks acknowledgements and broadcasts, and warms the
    server's caches. These messages count in the database checks, not in the figures."""
    for room in rooms:
        doctor = room.members[0]
        client_id = f"warmup-{room.consultation_id[:8]}-{doctor.index}"
        ack = doctor.client.call("message", {"consultation_id": room.consultation_id, "body": "warm-up",
                                             "client_id": client_id}, namespace=NAMESPACE, timeout=CALL_TIMEOUT)
        if not (isinstance(ack, dict) and ack.get("ok") and ack.get("created")):
            raise BenchError(f"the warm-up message in consultation {room.consultation_id} was not stored: {ack}")
        recorder.acks.append((client_id, time.perf_counter(), ack))
    expected = sum(len(room.members) - 1 for room in rooms)
    deadline = time.monotonic() + WARMUP_TIMEOUT
    while time.monotonic() < deadline:
        if len(recorder.deliveries) >= expected:
            return
        time.sleep(POLL)
    raise BenchError(f"warm-up: {len(recorder.deliveries)} of {expected} broadcasts reached the other members of "
                     f"the rooms within {WARMUP_TIMEOUT} s")


def set_up(base_url, rooms, members, recorder):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda room: open_consultation(base_url, room), rooms))
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(lambda member: connect(base_url, member, recorder), members))
    warm_up(rooms, recorder)


# --- the load ------------------------------------------------------------------------------------------------------

def send(member, client_id, scheduled_lag, recorder):
    body = f"bench {client_id} sent_at={time.time():.6f}"
    recorder.sends[client_id] = (member.index, time.perf_counter(), scheduled_lag)
    try:
        member.client.emit("message", {"consultation_id": member.consultation_id, "body": body,
                                       "client_id": client_id}, namespace=NAMESPACE,
                           callback=lambda ack=None: recorder.acks.append((client_id, time.perf_counter(), ack)))
    except Exception as error:  # noqa: BLE001 - a dead connection is counted, not fatal
        recorder.send_errors[type(error).__name__] += 1
        del recorder.sends[client_id]


def pending(recorder, members, acked_before):
    """Whether acknowledgements or deliveries are still due (by counting; analyse() tells which is which)."""
    if len(recorder.acks) - acked_before < len(recorder.sends):
        return True
    peers = {member.index: sum(1 for other in members if other.room == member.room) - 1 for member in members}
    expected = sum(peers[recorder.sends[client_id][0]] for client_id, _, ack in recorder.acks[acked_before:]
                   if isinstance(ack, dict) and ack.get("created"))
    return len(recorder.deliveries) < expected


def run_load(server, members, rooms, duration, rate, recorder):
    """Open loop: the k-th send over all clients is due at start + k / (clients x rate), by client k mod clients."""
    interval = 1.0 / (len(members) * rate)
    total = math.floor(duration * len(members) * rate)
    acked_before = len(recorder.acks)
    recorder.deliveries.clear()  # the warm-up's; their acks stay, for the database checks
    pid = worker_pid(server)
    cpu_before, client_cpu_before = cpu_ticks(pid), time.process_time()
    begin = time.perf_counter()
    for k in range(total):
        due = begin + k * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        member = members[k % len(members)]
        send(member, f"c{member.index}-{k // len(members)}", max(0.0, -delay), recorder)
    send_elapsed = time.perf_counter() - begin
    deadline = time.perf_counter() + GRACE
    drained = False
    while time.perf_counter() < deadline:
        if not pending(recorder, members, acked_before):
            drained = True
            break
        time.sleep(POLL)
    cpu_after, client_cpu = cpu_ticks(pid), time.process_time() - client_cpu_before
    measured = time.perf_counter() - begin
    threads = threading.active_count()
    if worker_pid(server) != pid:
        raise BenchError(f"the gunicorn worker was replaced during the load:\n{log_tail(server.log_path)}")
    ack_times = [at for _, at, _ in recorder.acks[acked_before:]]
    return LoadResult(clients=len(members), rooms=len(rooms), sent=len(recorder.sends), send_elapsed=send_elapsed,
                      last_ack_elapsed=(max(ack_times) - begin) if ack_times else float("nan"), drained=drained,
                      measured_elapsed=measured,
                      server_cpu_ms=ticks_to_ms(cpu_after - cpu_before), client_cpu_s=client_cpu,
                      client_threads=threads, recorder=recorder)


# --- counting ------------------------------------------------------------------------------------------------------

def analyse(result, members):
    recorder, found = result.recorder, Analysis(sent=result.sent)
    room_of = {member.index: member.room for member in members}
    user_of = {member.index: member.user_id for member in members}
    room_size = Counter(room_of.values())
    acked = {}  # client_id -> (message id, member index) of the stored messages of the load
    for client_id, at, ack in recorder.acks:
        if isinstance(ack, dict) and ack.get("ok"):
            found.stored_ids.add(ack["message"]["id"])  # warm-up ones included: the database holds them too
        if client_id not in recorder.sends:
            continue  # a warm-up message
        found.acked += 1
        sender, sent_at, _ = recorder.sends[client_id]
        found.ack_s.append(at - sent_at)
        if not (isinstance(ack, dict) and ack.get("ok")):
            error = ack.get("error", {}) if isinstance(ack, dict) else {}
            found.refused[error.get("code") or repr(ack)[:60]] += 1
        elif ack.get("created"):
            found.stored += 1
            acked[client_id] = (ack["message"]["id"], sender)
        else:
            found.not_created += 1
    found.unacked = found.sent - found.acked
    found.send_lag_s = [lag for _, _, lag in recorder.sends.values()]

    seen = Counter()  # (receiver, message id) -> deliveries
    for receiver, message, received_at in recorder.deliveries:
        key = (receiver, message.get("id"))
        seen[key] += 1
        if seen[key] > 1:
            found.duplicated += 1
            continue
        if message.get("sender_id") == user_of[receiver]:
            found.echoed += 1
            continue
        stored = acked.get(message.get("client_id"))
        if stored is None or stored[0] != message.get("id") or room_of[stored[1]] != room_of[receiver]:
            found.unexpected += 1
            continue
        found.delivered += 1
        found.delivery_s.append(received_at - sent_time(message))
    found.expected_deliveries = sum(room_size[room_of[sender]] - 1 for _, sender in acked.values())
    found.lost = found.expected_deliveries - found.delivered
    return found


def sent_time(message):
    """The send time written into the body: `bench <client_id> sent_at=<time.time()>`."""
    return float(message["body"].rsplit("sent_at=", 1)[1])


# --- checks in the database ----------------------------------------------------------------------------------------

def check_database(url, stored_ids):
    with psycopg.connect(url, connect_timeout=10) as conn:
        ids = {str(row[0]) for row in conn.execute("SELECT id FROM messages")}
        duplicate_seq = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY consultation_id, seq HAVING count(*) > 1) d"
        ).fetchone()[0]
        duplicate_client_id = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY consultation_id, sender_id, client_id "
            "HAVING count(*) > 1) d").fetchone()[0]
        numbering_gaps = conn.execute("""
            SELECT count(*) FROM consultations c
              LEFT JOIN (SELECT consultation_id, count(*) AS n, min(seq) AS low, max(seq) AS high
                           FROM messages GROUP BY consultation_id) m ON m.consultation_id = c.id
             WHERE c.message_count <> coalesce(m.n, 0)
                OR (m.n > 0 AND (m.low <> 1 OR m.high <> m.n))
        """).fetchone()[0]
    return Integrity(rows=len(ids), duplicate_seq=duplicate_seq, duplicate_client_id=duplicate_client_id,
                     numbering_gaps=numbering_gaps, rows_not_acked=len(ids - stored_ids),
                     acked_not_stored=len(stored_ids - ids))


# --- report --------------------------------------------------------------------------------------------------------

def percentile_ms(values, fraction):
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000


def latency_line(label, values):
    return (f"{label:<20} p50 {percentile_ms(values, 0.50):8.2f} ms   p99 {percentile_ms(values, 0.99):8.2f} ms   "
            f"max {max(values) * 1000 if values else float('nan'):8.2f} ms   ({len(values)} samples)")


def target_verdict(args, found, problems):
    p99 = percentile_ms(found.delivery_s, 0.99)
    if args.clients != TARGET_CLIENTS:
        return f"not checked (the target is set at {TARGET_CLIENTS} clients; this run had {args.clients})"
    if problems:
        return f"NOT MET (p99 {p99:.1f} ms, but messages were lost, duplicated or refused)"
    return f"{'PASS' if p99 < TARGET_P99_MS else 'NOT MET'} (p99 {p99:.1f} ms)"


def print_report(args, result, found, integrity, disconnects):
    elapsed = result.last_ack_elapsed if result.last_ack_elapsed == result.last_ack_elapsed else result.send_elapsed
    offered = args.clients * args.rate
    print(f"\nclients:             {result.clients} in {result.rooms} rooms (consultations), "
          f"{result.clients / result.rooms:g} per room")
    print(f"duration:            {result.send_elapsed:.2f} s of sending; last acknowledgement at {elapsed:.2f} s; "
          f"{'all delivered' if result.drained else 'still missing'} within the {GRACE:g} s grace period")
    print(f"offered:             {args.rate:g} message/s per client = {offered:g} messages/s; "
          f"{result.sent} sent")
    print(f"stored:              {found.stored} acknowledged as stored = {found.stored / elapsed:.1f} messages/s")
    print(f"deliveries:          {found.delivered} of {found.expected_deliveries} expected "
          f"({found.delivered / elapsed:.1f}/s to peers)")
    print(latency_line("delivery latency:", found.delivery_s))
    print(latency_line("ack latency:", found.ack_s))
    print(latency_line("send lag (client):", found.send_lag_s))
    print(f"lost:                {found.lost} (stored, never delivered to a peer within the grace period)")
    print(f"duplicated:          {found.duplicated} (one message id delivered twice to one client): "
          f"{'PASS' if found.duplicated == 0 else 'FAIL'}")
    print(f"unacknowledged:      {found.unacked}; refused: {sum(found.refused.values())}"
          + "".join(f"\n  {code}: {n}" for code, n in found.refused.most_common())
          + f"; stored earlier (created=false): {found.not_created}")
    print(f"echoed / unexpected: {found.echoed} / {found.unexpected} (deliveries to the sender itself / of messages "
          f"not acknowledged or from another room)")
    print(f"client errors:       {sum(result.recorder.send_errors.values())} send errors"
          + "".join(f" ({name}: {n})" for name, n in result.recorder.send_errors.items())
          + f", {len(result.recorder.errors)} 'error' events, {disconnects} disconnects during the load")
    per_message = result.server_cpu_ms / found.stored if found.stored else float("nan")
    window = result.measured_elapsed
    print(f"server CPU:          {per_message:.2f} ms per stored message (gunicorn worker: "
          f"{result.server_cpu_ms / 1000:.1f} s in {window:.1f} s of sending and draining = "
          f"{result.server_cpu_ms / 10 / window:.0f}% of a core)")
    print(f"load generator CPU:  {result.client_cpu_s:.1f} s = {result.client_cpu_s * 100 / window:.0f}% of a core "
          f"(this script: {result.client_threads} threads, on the same 2-core machine)")
    print()
    print(f"database:            {integrity.rows} messages stored (warm-up included); acknowledged but missing: "
          f"{integrity.acked_not_stored}; stored but never acknowledged: {integrity.rows_not_acked}")
    print(f"                     duplicate (consultation, seq): {integrity.duplicate_seq}; duplicate (consultation, "
          f"sender, client_id): {integrity.duplicate_client_id}; consultations with gaps in numbering: "
          f"{integrity.numbering_gaps}: {'PASS' if integrity_ok(integrity) else 'FAIL'}")
    print()
    problems = found.lost or found.duplicated or found.unacked or found.refused or found.unexpected or found.echoed
    print(f"target:              delivery p99 under {TARGET_P99_MS:g} ms at {TARGET_CLIENTS} clients: "
          f"{target_verdict(args, found, problems)}")


def integrity_ok(integrity):
    return not (integrity.duplicate_seq or integrity.duplicate_client_id or integrity.numbering_gaps
                or integrity.rows_not_acked or integrity.acked_not_stored)


def print_log_exceptions(server):
    exceptions = log_exceptions(server.log_path)
    if exceptions:
        print(f"{server.name} log: exceptions that ended a traceback:")
        for line, n in exceptions.most_common():
            print(f"  {n:>5} x {line}")


# --- main ----------------------------------------------------------------------------------------------------------

def run(args, stack):
    work_dir, env = prepare_database(args, stack, APP_SETTINGS)
    print(f"writing {args.rooms} rooms and {args.clients} accounts to the database (bench/chat_seed.py) ...",
          flush=True)
    rooms, members = seed(env, args.clients, args.rooms)

    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    servers, recorder = [], Recorder()
    try:
        with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir,
                            ready_path=f"{API}/health") as app:
            servers.append(app)
            try:
                print(f"opening {len(rooms)} consultations, connecting {len(members)} Socket.IO clients to "
                      f"{NAMESPACE} and joining their rooms ...", flush=True)
                started = time.perf_counter()
                set_up(app.base_url, rooms, members, recorder)
                print(f"  ready in {time.perf_counter() - started:.1f} s; warm-up message delivered in every room",
                      flush=True)
                print(f"chat: {len(members)} clients x {args.rate:g} message/s for {args.duration:g} s ...",
                      flush=True)
                result = run_load(app, members, rooms, args.duration, args.rate, recorder)
                disconnects = len(recorder.disconnects)
            finally:
                with ThreadPoolExecutor(SETUP_THREADS) as pool:
                    list(pool.map(disconnect, members))
    finally:
        # After the server stopped, so that errors while shutting down are seen too.
        print_log_problems(servers)
        for server in servers:
            print_log_exceptions(server)
            if args.keep_log:
                shutil.copyfile(server.log_path, args.keep_log)
                print(f"{server.name} log kept as {args.keep_log}")
    found = analyse(result, members)
    integrity = check_database(args.database_url, found.stored_ids)
    print_report(args, result, found, integrity, disconnects)
    return not (found.lost or found.duplicated or found.unacked or found.refused or found.unexpected
                or found.echoed or disconnects or result.recorder.send_errors or result.recorder.errors
                or not integrity_ok(integrity))


def main(argv=None):
    args = parse_args(argv)
    try:
        with ExitStack() as stack:
            ok = run(args, stack)
    except BenchError as error:
        print(f"chat_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chat_bench: interrupted; server stopped and the bench database dropped", file=sys.stderr)
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
