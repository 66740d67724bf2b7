"""Consultation chat under load: Socket.IO delivery latency, throughput, and no lost or duplicated message.

Run from the repository root:

    .venv/bin/python bench/chat_bench.py [--clients 200] [--rooms 100] [--duration 20] [--rate 1]
                                         [--database-url URL] [--redis-url URL] [--keep-log PATH]

What it does, all on 127.0.0.1:
  1. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench"), runs the migrations, and writes --rooms rooms straight to the database through the app's
     models (bench/chat_seed.py): per room a verified doctor, a dog, its owner, and a confirmed appointment that
     started 2 minutes ago; when --clients is more than twice --rooms, the extra clients are further guardians of the
     rooms' dogs, spread evenly; and one more room, not counted in --clients or --rooms, for the probe pair (a
     doctor and a guardian). Every account gets an access token signed with the server's SECRET_KEY;
  2. starts PAWMANITY as `gunicorn -k gevent -w 1 wsgi:app` with PAWMANITY_CONFIG=production and the chat rate limit
     raised to 100000 per minute (so that the limiter does not refuse the load);
  3. each room's doctor opens its consultation (POST /api/v1/consultations), the probe's too, then every client (not the
     probe pair) connects to the Socket.IO namespace /chat over WebSocket (python-socketio's client, a few threads per
     client) and joins its room; one warm-up message per room checks that acknowledgements and broadcasts work;
  4. for --duration seconds every client sends --rate messages per second, open loop: each client at its own random
     phase (the same in every run), never waiting for acknowledgements, so that the members of a room send
     independently and their messages sometimes cross, as in a real chat. Each message has a unique client_id and its
     send time in the body; the server stores it, acknowledges it to the sender, and broadcasts it to the others in
     the room. Meanwhile, from just before the first send to the end of the grace period, the probe pair chats at 10
     messages/s in its own room: bench/loop_bench.py's chatting, tests/socket_probe.py's one-thread clients (one
     sends, the other receives) in a process of its own. The crowd's ~400 client threads share this process and its
     GIL, so their latencies include waits of their own, tens of ms and varying from run to run; the probe's are
     the server's;
  5. waits up to 5 s for the last acknowledgements and deliveries, stops the probe pair (which waits up to 10 s for its
     last deliveries), then prints: messages stored per second (the probe's left out); the delivery latency (receipt by
     a peer - send time) and the acknowledgement latency of the stored messages, p50/p99/max, and the probe's delivery
     latency beside the crowd's; messages lost (acknowledged as stored, but never delivered to a peer by the end of the
     grace period; for the probe, sent but never delivered) and duplicated (the same message id delivered twice to one
     client); messages never acknowledged, split by the database into stored late and never stored; the server's CPU
     time per message stored in the window, the probe's included (the gunicorn worker's utime+stime from /proc; the
     offered load is --clients x --rate + 10 messages/s), this script's own CPU time (so that one can tell whether the
     load generator was the bottleneck), that of the database's PostgreSQL backends and that of everything else on the
     machine (the cores are shared); the server's CPU per message and messages/s as ratios to the authenticated floor
     (bench/floor_app.py, served the same way and loaded with wrk for 5 s before the chat); and the target: delivery p99
     under 100 ms at 200 clients, judged on the probe's p99, with the crowd's beside it;
  6. checks in PostgreSQL that every message acknowledged as stored is there under the acknowledged id, that no row
     outside the probe's room has a client_id this script did not send, that no two rows share a (consultation,
     seq) or a (consultation, sender, client_id), and that each consultation's numbering runs 1..message_count
     without a gap (the probe's room too);
  7. stops the server and drops the database, also on Ctrl-C or an error.

The exit status is 0 when no message was lost (the probe's included), duplicated, left unacknowledged or refused, no
client lost its connection and the database checks pass (the latency target is reported, not enforced); 1 otherwise.
"""

import argparse
import heapq
import json
import math
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import socketio
from harness import (
    REPO,
    BenchError,
    add_service_arguments,
    backend_ticks,
    check_service_arguments,
    cpu_ticks,
    expect,
    http_json,
    log_tail,
    machine_busy_ticks,
    machine_load,
    measure_floor,
    prepare_database,
    print_log_exceptions,
    print_log_problems,
    python_script,
    run_bench,
    running_server,
    start_floor,
    stop_server,
    ticks_to_ms,
    worker_pid,
)
from loop_bench import chatting

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
SCHEDULE_SEED = 2026  # the clients' send phases: the same in every run
# The probe pair: a doctor and a guardian in one more room, measured by tests/socket_probe.py's one-thread clients in
# a process of their own (bench/loop_bench.py's chatting), so that its figures are the server's and not this
# process's ~400 client threads. 10 messages/s gives a p99 from a few hundred samples and adds ~5% to the load.
PROBE_RATE = 10.0


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
    sends: dict = field(default_factory=dict)  # client_id -> (member index, perf_counter at emit, lag behind schedule)
    acks: list = field(default_factory=list)  # (client_id, perf_counter, ack payload)
    deliveries: list = field(default_factory=list)  # (receiver index, message dict, time.time() at receipt)
    disconnects: list = field(default_factory=list)  # (member index, reason)
    errors: list = field(default_factory=list)  # (member index, "error" event payload)
    send_errors: Counter = field(default_factory=Counter)  # exception name -> count


@dataclass
class LoadResult:
    clients: int
    rooms: int
    sent: int
    send_elapsed: float  # from the first scheduled send to the last send
    measured_elapsed: float  # sending, then waiting for the last acknowledgements and deliveries (at most GRACE)
    window: tuple  # (time.time() at the start, at the end) of measured_elapsed
    drained: bool  # every acknowledgement and delivery arrived before the grace period ran out
    disconnects: int  # connections lost during the load
    server_cpu_ms: float
    client_cpu_s: float
    client_threads: int
    recorder: Recorder
    database_cpu_ms: float  # the PostgreSQL backends of the bench database
    machine_cpu_ms: float  # every process of the machine, all cores
    probe_delivery_s: list  # the probe pair's delivery latencies
    probe_sent: int  # messages the probe pair sent


@dataclass
class Analysis:
    sent: int = 0
    acked: int = 0
    stored: int = 0  # acknowledged with created=True
    not_created: int = 0  # acknowledged, but as a message already stored under that client_id
    refused: Counter = field(default_factory=Counter)  # error code of refusing acknowledgements -> count
    unacked: int = 0  # no acknowledgement by the end of the grace period
    expected_deliveries: int = 0  # acknowledged messages x the other members of their room
    delivered: int = 0  # first deliveries of acknowledged messages to the other members of their room
    delivered_unacked: int = 0  # first deliveries of messages whose acknowledgement never came
    lost: int = 0  # expected_deliveries - delivered
    duplicated: int = 0
    echoed: int = 0  # deliveries of a client's own message back to it (the server skips the sender)
    unexpected: int = 0  # deliveries of messages this client did not send to that room
    delivery_s: list = field(default_factory=list)
    ack_s: list = field(default_factory=list)
    send_lag_s: list = field(default_factory=list)
    acked_ids: dict = field(default_factory=dict)  # client_id -> message id announced by an acknowledgement
    answered: set = field(default_factory=set)  # client_ids that had an acknowledgement, storing or refusing


@dataclass
class Integrity:
    rows: int
    stored_in_window: int  # rows whose created_at falls within the measured window, the probe's room left out
    probe_stored_in_window: int  # the same, in the probe's room
    last_stored: float  # seconds from the start of the window to the last of those rows
    duplicate_seq: int  # (consultation, seq) pairs held by more than one row
    duplicate_client_id: int  # (consultation, sender, client_id) triples held by more than one row
    numbering_gaps: int  # consultations whose message_count or seqs do not run 1..count
    acked_missing: int  # acknowledged as stored, but no such row (or another id under that client_id)
    foreign_rows: int  # rows under a client_id this script never sent (the probe's room left out)
    unacked_stored: int  # sent, never acknowledged, yet stored (late: after the grace period)
    unacked_dropped: int  # sent, never acknowledged, never stored

    @property
    def ok(self):
        return not (self.duplicate_seq or self.duplicate_client_id or self.numbering_gaps or self.acked_missing
                    or self.foreign_rows)


# --- command line --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200,
                        help="Socket.IO clients (default 200), not counting the probe pair")
    parser.add_argument("--rooms", type=int, default=100,
                        help="consultations; each has a doctor and one or more guardians (default 100), not counting "
                             f"the probe pair's, where a doctor and a guardian chat at {PROBE_RATE:g} messages/s "
                             "through a lean one-thread client in a process of its own")
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
    """The rooms and their members, then the probe pair's room (a doctor and a guardian), seeded last so that the
    crowd's members are numbered 0..clients-1 as before."""
    sizes = [*room_sizes(clients, rooms), 2]
    output = python_script(env, SEED_SCRIPT, str(rooms + 1), *map(str, sizes))
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
    *result, probe = result
    return result, members[:clients], probe


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
    client.on("disconnect", lambda reason=None: recorder.disconnects.append((index, reason)),
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


def set_up(base_url, rooms, probe, members, recorder):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda room: open_consultation(base_url, room), [*rooms, probe]))
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(lambda member: connect(base_url, member, recorder), members))
    warm_up(rooms, recorder)


# --- the load ------------------------------------------------------------------------------------------------------

def send(member, client_id, lag, recorder):
    body = f"bench {client_id} sent_at={time.time():.6f}"
    recorder.sends[client_id] = (member.index, time.perf_counter(), lag)
    try:
        member.client.emit("message", {"consultation_id": member.consultation_id, "body": body,
                                       "client_id": client_id}, namespace=NAMESPACE,
                           callback=lambda ack=None: recorder.acks.append((client_id, time.perf_counter(), ack)))
    except Exception as error:  # noqa: BLE001 - a dead connection is counted, not fatal
        recorder.send_errors[type(error).__name__] += 1
        del recorder.sends[client_id]


def pending(recorder, peers, acked_before):
    """Whether acknowledgements or deliveries are still due (by counting; analyse() tells which is which)."""
    if len(recorder.acks) - acked_before < len(recorder.sends):
        return True
    expected = sum(peers[recorder.sends[client_id][0]] for client_id, _, ack in recorder.acks[acked_before:]
                   if isinstance(ack, dict) and ack.get("created"))
    return len(recorder.deliveries) < expected


def probe_room(room):
    """The probe's room as bench/loop_bench.py's chatting takes it: its doctor sends, its guardian receives."""
    return {"members": [{"token": member.token} for member in room.members], "consultation_id": room.consultation_id}


def run_load(server, members, rooms, probe, duration, rate, recorder, database):
    """Open loop: client c sends its n-th message at start + phase[c] + n / rate, with a random phase in [0, 1 / rate)
    (fixed seed), until `duration`; a send never waits for an acknowledgement. The members of a room send
    independently of each other, as people in a chat do, so that their messages sometimes cross. The probe pair
    chats in its own room from just before the first send to the end of the grace period."""
    period, rng = 1.0 / rate, random.Random(SCHEDULE_SEED)
    schedule = [(rng.uniform(0, period), 0, member.index) for member in members]  # (due, n, member index)
    heapq.heapify(schedule)
    peers = {member.index: len(rooms[member.room].members) - 1 for member in members}
    acked_before = len(recorder.acks)
    recorder.deliveries.clear()  # the warm-up's; their acknowledgements stay, for the database checks
    recorder.disconnects.clear()
    pid = worker_pid(server)
    # Its process starts, connects and warms up before the CPU counters are read, and is stopped after they are
    # read again: the window holds its steady 10 messages/s, not its set-up or its goodbye.
    with chatting(server.base_url, probe_room(probe), 1.0 / PROBE_RATE) as probe_figures:
        database_before = backend_ticks(database)
        cpu_before, client_cpu_before, machine_before = cpu_ticks(pid), time.process_time(), machine_busy_ticks()
        wall_begin, begin = time.time(), time.perf_counter()
        while schedule[0][0] < duration:
            due, n, index = schedule[0]
            delay = begin + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            send(members[index], f"c{index}-{n}", max(0.0, -delay), recorder)
            heapq.heapreplace(schedule, (due + period, n + 1, index))
        send_elapsed = time.perf_counter() - begin
        deadline, drained = time.perf_counter() + GRACE, False
        while time.perf_counter() < deadline:
            if not pending(recorder, peers, acked_before):
                drained = True
                break
            time.sleep(POLL)
        cpu_after, client_cpu = cpu_ticks(pid), time.process_time() - client_cpu_before
        machine_ms = ticks_to_ms(machine_busy_ticks() - machine_before)
        measured, wall_end = time.perf_counter() - begin, time.time()
        database_after = backend_ticks(database)  # backends that ended meanwhile are missed: rare with a pool
    if worker_pid(server) != pid:
        raise BenchError(f"the gunicorn worker was replaced during the load:\n{log_tail(server.log_path)}")
    return LoadResult(clients=len(members), rooms=len(rooms), sent=len(recorder.sends), send_elapsed=send_elapsed,
                      measured_elapsed=measured, window=(wall_begin, wall_end), drained=drained,
                      disconnects=len(recorder.disconnects), server_cpu_ms=ticks_to_ms(cpu_after - cpu_before),
                      client_cpu_s=client_cpu, client_threads=threading.active_count(), recorder=recorder,
                      database_cpu_ms=ticks_to_ms(sum(ticks - database_before.get(backend, 0)
                                                      for backend, ticks in database_after.items())),
                      machine_cpu_ms=machine_ms, probe_delivery_s=probe_figures["latencies"],
                      probe_sent=probe_figures["sent"])


# --- counting ------------------------------------------------------------------------------------------------------

def analyse(result, members):
    recorder, found = result.recorder, Analysis(sent=result.sent)
    room_of = {member.index: member.room for member in members}
    user_of = {member.index: member.user_id for member in members}
    room_size = Counter(room_of.values())
    for client_id, at, ack in recorder.acks:
        if isinstance(ack, dict) and ack.get("ok"):
            found.acked_ids[client_id] = ack["message"]["id"]  # warm-up ones too: the database holds them
        if client_id not in recorder.sends:
            continue  # a warm-up message
        found.acked += 1
        found.answered.add(client_id)
        sender, sent_at, _ = recorder.sends[client_id]
        if not (isinstance(ack, dict) and ack.get("ok")):
            error = ack.get("error", {}) if isinstance(ack, dict) else {}
            found.refused[error.get("code") or repr(ack)[:60]] += 1
        elif ack.get("created"):
            found.ack_s.append(at - sent_at)
            found.stored += 1
            found.expected_deliveries += room_size[room_of[sender]] - 1
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
        client_id = message.get("client_id")
        if client_id not in recorder.sends or room_of[recorder.sends[client_id][0]] != room_of[receiver]:
            found.unexpected += 1
            continue
        found.delivery_s.append(received_at - sent_time(message))
        if client_id in found.acked_ids:
            found.delivered += found.acked_ids[client_id] == message.get("id")
        else:
            found.delivered_unacked += 1
    found.lost = found.expected_deliveries - found.delivered
    return found


def sent_time(message):
    """The send time written into the body: `bench <client_id> sent_at=<time.time()>`."""
    return float(message["body"].rsplit("sent_at=", 1)[1])


# --- checks in the database ----------------------------------------------------------------------------------------

def check_database(url, result, found, probe):
    """The stored messages against what was sent and acknowledged; uniqueness and numbering by SQL. The probe's
    room holds messages this process never sent: it is left out of the foreign rows and of the messages stored in
    the window (counted apart), but its numbering and uniqueness are checked as every room's."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT client_id, id, extract(epoch FROM created_at), consultation_id::text "
                            "FROM messages").fetchall()
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
             WHERE c.message_count <> coalesce(m.n, 0) OR (m.n > 0 AND (m.low <> 1 OR m.high <> m.n))
        """).fetchone()[0]
    crowd = [row[:3] for row in rows if row[3] != probe.consultation_id]
    stored = {}  # client_id -> message ids (client_ids are unique across clients here)
    for client_id, message_id, _ in crowd:
        stored.setdefault(client_id, set()).add(str(message_id))
    begin, end = result.window
    in_window = [float(created) for _, _, created in crowd if begin <= float(created) <= end]
    unacked = [client_id for client_id in result.recorder.sends if client_id not in found.answered]
    return Integrity(
        rows=len(rows),
        stored_in_window=len(in_window), last_stored=max(in_window, default=begin) - begin,
        probe_stored_in_window=sum(1 for _, _, created, consultation in rows
                                   if consultation == probe.consultation_id and begin <= float(created) <= end),
        duplicate_seq=duplicate_seq, duplicate_client_id=duplicate_client_id, numbering_gaps=numbering_gaps,
        acked_missing=sum(1 for client_id, message_id in found.acked_ids.items()
                          if stored.get(client_id) != {message_id}),
        foreign_rows=sum(1 for client_id in stored
                         if client_id not in result.recorder.sends and client_id not in found.acked_ids),
        unacked_stored=sum(1 for client_id in unacked if client_id in stored),
        unacked_dropped=sum(1 for client_id in unacked if client_id not in stored),
    )


# --- report --------------------------------------------------------------------------------------------------------

def percentile_ms(values, fraction):
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000


def latency_line(label, values, note=""):
    return (f"{label:<21}p50 {percentile_ms(values, 0.50):9.2f} ms   p99 {percentile_ms(values, 0.99):9.2f} ms   "
            f"max {max(values) * 1000 if values else float('nan'):9.2f} ms   ({len(values)} samples{note})")


def probe_lost(result):
    """The probe's messages sent but never delivered (chat_every waits up to 10 s for them after the window)."""
    return result.probe_sent - len(result.probe_delivery_s)


def delivery_problems(result, found):
    """What makes a run fail, whatever its latency: each as (label, count)."""
    recorder = result.recorder
    return [(label, n) for label, n in [
        ("lost", found.lost), ("duplicated", found.duplicated), ("unacknowledged", found.unacked),
        ("refused", sum(found.refused.values())), ("echoed", found.echoed), ("unexpected", found.unexpected),
        ("send errors", sum(recorder.send_errors.values())), ("'error' events", len(recorder.errors)),
        ("disconnects", result.disconnects), ("lost by the probe", max(0, probe_lost(result)))] if n]


def target_verdict(args, result, found, problems):
    """Judged on the probe's p99: the crowd's clients measure their own threads' waits too (tens of ms, varying)."""
    p99 = percentile_ms(result.probe_delivery_s, 0.99)
    if args.clients != TARGET_CLIENTS:
        return f"not checked (the target is set at {TARGET_CLIENTS} clients; this run had {args.clients})"
    verdict = "PASS" if p99 < TARGET_P99_MS and not problems else "NOT MET"
    why = "" if not problems else "; and " + ", ".join(f"{n} {label}" for label, n in problems)
    return (f"{verdict} (lean probe p99 {p99:.1f} ms; the crowd's own clients measured p99 "
            f"{percentile_ms(found.delivery_s, 0.99):.1f} ms, their threads included{why})")


def print_report(args, result, found, integrity, floor):
    recorder, window = result.recorder, result.measured_elapsed
    problems = delivery_problems(result, found)
    print(f"\nclients:             {result.clients} in {result.rooms} rooms (consultations), "
          f"{result.clients / result.rooms:g} per room; {result.client_threads} client threads; and the probe pair "
          f"in one more room")
    print(f"duration:            {result.send_elapsed:.2f} s of sending, then "
          f"{window - result.send_elapsed:.2f} s until every acknowledgement and delivery had arrived"
          if result.drained else
          f"duration:            {result.send_elapsed:.2f} s of sending, then the {GRACE:g} s grace period ran out "
          f"with acknowledgements or deliveries still missing")
    print(f"offered:             {args.rate:g} message/s per client = {args.clients * args.rate:g} messages/s, and "
          f"the probe's {PROBE_RATE:g} = {args.clients * args.rate + PROBE_RATE:g} messages/s; {result.sent} sent, "
          f"and {result.probe_sent} by the probe")
    # Over the sending, or until the last message was stored when the server fell behind (by created_at).
    span = max(result.send_elapsed, integrity.last_stored)
    print(f"stored:              {integrity.stored_in_window} messages in {span:.2f} s = "
          f"{integrity.stored_in_window / span:.1f} messages/s; {found.stored} acknowledged as stored (the probe's "
          f"{integrity.probe_stored_in_window} not counted)")
    print(f"deliveries:          {found.delivered} of the {found.expected_deliveries} due for acknowledged messages"
          + (f", and {found.delivered_unacked} of messages not (yet) acknowledged" if found.delivered_unacked else ""))
    print(latency_line("delivery latency:", found.delivery_s))
    print(latency_line("probe delivery:", result.probe_delivery_s,
                       f"; a lean one-thread client in a process of its own, {PROBE_RATE:g} msg/s in one more room"))
    print(f"                     (why both: the crowd's clients also measure their own waits for the GIL among "
          f"this process's {result.client_threads} threads; the probe measures the server, and judges the target)")
    print(latency_line("ack latency:", found.ack_s))
    print(latency_line("send lag (client):", found.send_lag_s))
    print(f"lost:                {found.lost} (acknowledged as stored, never delivered to a peer); by the probe: "
          f"{probe_lost(result)} of {result.probe_sent} (sent, never delivered)")
    print(f"duplicated:          {found.duplicated} (one message id delivered twice to one client): "
          f"{'PASS' if found.duplicated == 0 else 'FAIL'}")
    print(f"unacknowledged:      {found.unacked} (no acknowledgement by the end): {integrity.unacked_stored} stored "
          f"after all, {integrity.unacked_dropped} never stored (failed, or still queued when the server stopped)")
    print(f"refused:             {sum(found.refused.values())}"
          + "".join(f"  {code}: {n}" for code, n in found.refused.most_common())
          + f"; acknowledged as stored before (created=false): {found.not_created}")
    print(f"echoed / unexpected: {found.echoed} / {found.unexpected} (deliveries back to the sender / of messages "
          f"from another room or never sent)")
    print(f"client errors:       {sum(recorder.send_errors.values())} send errors"
          + "".join(f" ({name}: {n})" for name, n in recorder.send_errors.items())
          + f", {len(recorder.errors)} 'error' events, {result.disconnects} disconnects during the load")
    stored = integrity.stored_in_window + integrity.probe_stored_in_window  # the probe's cost the worker CPU too
    print(f"server CPU:          {result.server_cpu_ms / stored if stored else float('nan'):.2f} ms per stored "
          f"message, the probe's included ({stored} stored in the window; gunicorn worker: "
          f"{result.server_cpu_ms / 1000:.1f} s in {window:.1f} s = {result.server_cpu_ms / 10 / window:.0f}% of a "
          f"core)")
    if stored:
        print(f"the floor:           {floor.cpu_ms_per_request:.2f} ms CPU per request, {floor.wrk.rps:.1f} req/s "
              f"(bench/floor_app.py, same run): a stored message costs "
              f"{result.server_cpu_ms / stored / floor.cpu_ms_per_request:.2f}x the floor's CPU; messages stored/s "
              f"are {integrity.stored_in_window / max(result.send_elapsed, integrity.last_stored) / floor.wrk.rps:.2f}x"
              f" its req/s")
    print(f"load generator CPU:  {result.client_cpu_s:.1f} s = {result.client_cpu_s * 100 / window:.0f}% of a core "
          f"(this script, on the same 2-core machine)")
    print(f"PostgreSQL CPU:      {result.database_cpu_ms / 1000:.1f} s = {result.database_cpu_ms / 10 / window:.0f}% "
          f"of a core (the bench database's backends, on the same machine)")
    others = result.machine_cpu_ms - result.server_cpu_ms - result.client_cpu_s * 1000 - result.database_cpu_ms
    print(f"other CPU use:       {max(0.0, others) / 1000:.1f} s = {max(0.0, others) / 10 / window:.0f}% of a core "
          f"(the rest of the machine, the probe's process included: {os.cpu_count()} cores busy "
          f"{result.machine_cpu_ms / 10 / window:.0f}% of one in all; much here means the figures were measured on a "
          f"shared machine)")
    print()
    print(f"database:            {integrity.rows} messages (warm-up and the probe's included); acknowledged but not "
          f"stored: {integrity.acked_missing}; stored under a client_id never sent: {integrity.foreign_rows} (the "
          f"probe's room aside)")
    print(f"                     duplicate (consultation, seq): {integrity.duplicate_seq}; duplicate (consultation, "
          f"sender, client_id): {integrity.duplicate_client_id}; consultations whose numbering has a gap: "
          f"{integrity.numbering_gaps}: {'PASS' if integrity.ok else 'FAIL'}")
    print()
    print(f"target:              delivery p99 under {TARGET_P99_MS:g} ms at {TARGET_CLIENTS} clients: "
          f"{target_verdict(args, result, found, problems)}")
    return not problems and integrity.ok



# --- main ----------------------------------------------------------------------------------------------------------

def run(args, stack):
    work_dir, env = prepare_database(args, stack, APP_SETTINGS)
    print(f"writing {args.rooms} rooms and {args.clients} accounts to the database (bench/chat_seed.py) ...",
          flush=True)
    rooms, members, probe = seed(env, args.clients, args.rooms)
    # Before the server takes its connections; reads the CPU time of the server's PostgreSQL backends.
    database = stack.enter_context(psycopg.connect(args.database_url, autocommit=True, connect_timeout=10))

    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    servers, recorder = [], Recorder()
    try:
        with ExitStack() as server_stack:
            app = server_stack.enter_context(running_server("pawmanity", "wsgi:app", cwd=REPO, env=env,
                                                            log_dir=work_dir, ready_path=f"{API}/health"))
            servers.append(app)
            floor = start_floor(server_stack, env, work_dir)
            servers.append(floor)
            print(f"the authenticated floor (bench/floor_app.py), 5 s of wrk; {machine_load()} ...", flush=True)
            floor_result = measure_floor(floor, members[0].token, work_dir)
            stop_server(floor)  # idle during the chat, but one process fewer on the shared cores
            try:
                print(f"opening {len(rooms) + 1} consultations (one for the probe pair), connecting {len(members)} "
                      f"Socket.IO clients to {NAMESPACE} and joining their rooms ...", flush=True)
                started = time.perf_counter()
                set_up(app.base_url, rooms, probe, members, recorder)
                print(f"  ready in {time.perf_counter() - started:.1f} s; the warm-up message reached every room",
                      flush=True)
                print(f"chat: {len(members)} clients x {args.rate:g} message/s for {args.duration:g} s, and the probe "
                      f"pair at {PROBE_RATE:g} messages/s ...", flush=True)
                result = run_load(app, members, rooms, probe, args.duration, args.rate, recorder, database)
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
    integrity = check_database(args.database_url, result, found, probe)
    return print_report(args, result, found, integrity, floor_result)


def main(argv=None):
    return run_bench("chat_bench", run, parse_args(argv))

if __name__ == "__main__":
    sys.exit(main())
