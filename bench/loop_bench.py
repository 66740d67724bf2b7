"""Does anything stall the event loop? Chat delivery and Socket.IO round trips through one gevent worker while others
sign in or upload.

Serves PAWMANITY the production way (gunicorn -k gevent -w 1, production argon2 parameters) twice in the same run:
with CPU-bound work on the offload pools (the default) and with the `cpu` pool turned off (PAWMANITY_CPU_THREADS=0:
password hashing back on the event loop, as before issue 16). For each server, two clients of one consultation chat
on /chat (one sends a message every 100 ms with its send time in the body, the other receives it) while a third
client pings /notifications every 10 ms: alone (the baseline), during bursts of 20 concurrent sign-ins, and during
bursts of 4 concurrent photo uploads. Prints chat delivery latency and ping round trip, p50/p99, as ratios to the
same server's baseline; sign-ins per second; and the worker's own loop-lag histogram and stall count.

The chat pair and the pinger are tests/socket_probe.py's one-thread clients, each in a process of its own; the load
comes from a third process at a lower priority. So neither the load generator's threads nor python-socketio's
client threads are measured as the server's latency (bench/loop_client_probe.py compares the clients). The
consultations are written straight to the database by bench/chat_seed.py, as for bench/chat_bench.py.

    .venv/bin/python bench/loop_bench.py [--database-url URL] [--redis-url URL] [--seconds 6] [--rounds 3] [--chat-interval 0.1]
"""

import argparse
import io
import json
import multiprocessing
import os
import re
import select
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.socket_probe
import harness  # noqa: E402

from tests import socket_probe  # noqa: E402

PASSWORD = "a loop bench password 42"
METRICS_TOKEN = "loop-bench-metrics-token"
SEED_SCRIPT = Path(__file__).resolve().parent / "chat_seed.py"
# A stored chat message costs the worker about 22 ms of CPU on this machine (measured: /proc utime+stime over 61
# messages at one per 50 ms): one every 20 ms would saturate the worker by itself, and the figures would be its
# queue, not the loop's stalls. One every 100 ms keeps the probe at about a fifth of a core.
CHAT_INTERVAL = 0.100
LOAD_NICENESS = 10
LOADS = ("alone", "sign-in burst", "4 uploads")


# --- the chat pair -------------------------------------------------------------------------------------------------

def chat_every(base_url, sender_token, receiver_token, consultation_id, interval, ready, stop, results):
    """Send a message every `interval` s from one participant's socket and receive it on another's, in one thread:
    select() waits on the receiver until the next send is due. Puts (delivery latencies, messages sent) in `results`.

    The body carries the send time (time.time(), the clock both ends of this process share)."""
    sender = socket_probe.LeanSocket(base_url, "/chat", {"token": sender_token})
    receiver = socket_probe.LeanSocket(base_url, "/chat", {"token": receiver_token})
    latencies, sent = [], 0
    try:
        for socket in (sender, receiver):
            joined = socket.call("join", {"consultation_id": consultation_id})
            if not (isinstance(joined, dict) and joined.get("ok")):
                raise RuntimeError(f"could not join consultation {consultation_id}: {joined}")
        warm_up = f"warm-up {uuid.uuid4().hex}"
        sender.emit("message", {"consultation_id": consultation_id, "body": warm_up, "client_id": warm_up[8:]})
        while not any(args and args[0].get("body") == warm_up for _, args, _ in receiver.events):
            receiver.receive()
        receiver.events.clear()
        ready.set()
        due = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            if now >= due:
                sent += 1
                body = f"loop bench sent_at={time.time():.6f}"
                sender.emit("message", {"consultation_id": consultation_id, "body": body,
                                        "client_id": f"{uuid.uuid4().hex}"})
                due += interval
                continue
            readable, _, _ = select.select([receiver.ws.sock, sender.ws.sock], [], [], due - now)
            if sender.ws.sock in readable:
                sender.receive()  # keep-alive pings; the sender is not sent its own messages
                sender.events.clear()
            if receiver.ws.sock in readable:
                receiver.receive()
                for name, args, _ in receiver.events:
                    if name == "message" and "sent_at=" in args[0].get("body", ""):
                        latencies.append(time.time() - float(args[0]["body"].rsplit("sent_at=", 1)[1]))
                receiver.events.clear()
        # Messages sent but not yet delivered when the window closed are lost to the figures: wait for them.
        deadline = time.perf_counter() + 10
        while len(latencies) < sent and time.perf_counter() < deadline:
            if select.select([receiver.ws.sock], [], [], deadline - time.perf_counter())[0]:
                receiver.receive()
                for name, args, _ in receiver.events:
                    if name == "message" and "sent_at=" in args[0].get("body", ""):
                        latencies.append(time.time() - float(args[0]["body"].rsplit("sent_at=", 1)[1]))
                receiver.events.clear()
    finally:
        sender.close()
        receiver.close()
        results.put((latencies, sent))


@contextmanager
def chatting(base_url, room, interval=CHAT_INTERVAL):
    """The chat pair in a process of its own; yields a dict that holds, once the block ends, "latencies" (seconds)
    and "sent"."""
    doctor, guardian = room["members"][:2]
    with socket_probe.run_in_process(
            chat_every, (base_url, doctor["token"], guardian["token"], room["consultation_id"], interval),
            ("latencies", "sent"), "chat", failure=harness.BenchError) as figures:
        yield figures


# --- the load (in a niced process of its own) ----------------------------------------------------------------------

def register(base_url, label):
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    answer = requests.post(f"{base_url}/api/v1/auth/register", timeout=60, json={
        "email": email, "password": PASSWORD, "full_name": "Loop Bench", "role": "patient"})
    harness.expect(answer.status_code, answer.text, 201, "register")
    return email


def sign_in(base_url, email):
    answer = requests.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=120)
    harness.expect(answer.status_code, answer.text, 200, "sign in")
    return answer.json()["access_token"]


def sign_in_burst(base_url, emails, count=20):
    """`count` concurrent sign-ins; how long they took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda n: sign_in(base_url, emails[n % len(emails)]), range(count)))
    return time.perf_counter() - started


def upload_burst(base_url, token, patient_id, photo, count=4):
    def upload(n):
        answer = requests.post(f"{base_url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                               timeout=120, data={"patient_id": patient_id},
                               files={"file": (f"p{n}.jpg", photo, "image/jpeg")})
        harness.expect(answer.status_code, answer.text, 201, "upload")

    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(upload, range(count)))


def photo_bytes(side=2000):
    buffer = io.BytesIO()
    Image.effect_noise((side, side), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- measuring -----------------------------------------------------------------------------------------------------

def percentiles(samples):
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def loop_metrics(base_url):
    """(loop wake-ups, those more than 30 ms late, stalls logged) so far."""
    buckets, total, stalls = socket_probe.loop_metrics(base_url, METRICS_TOKEN)
    return int(total), int(total - buckets[0.03]), int(stalls)


@contextmanager
def probes(base_url, watcher, room, chat_interval):
    """The chat pair and the pinger at work for the block; yields {"chat": ..., "ping": ...} filled in at its end."""
    with chatting(base_url, room, chat_interval) as chat, socket_probe.pinging(base_url, watcher) as ping:
        yield {"chat": chat, "ping": ping}


def measure(label, server, room, load, args):
    base = server.base_url
    emails = [register(base, f"{label}{n}") for n in range(4)]
    watcher = sign_in(base, register(base, f"{label}-watcher"))
    pet = requests.post(f"{base}/api/v1/patients", headers={"Authorization": f"Bearer {watcher}"}, timeout=30,
                        json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
    photo = photo_bytes()
    load.submit(sign_in_burst, base, emails).result(timeout=300)  # warm-up: connections, caches, the pool's thread
    figures = {}

    with probes(base, watcher, room, args.chat_interval) as alone:
        time.sleep(args.seconds)
    figures["alone"] = alone

    signing = 0.0
    with probes(base, watcher, room, args.chat_interval) as burst:
        for _ in range(args.rounds):
            signing += load.submit(sign_in_burst, base, emails).result(timeout=300)
    figures["sign-in burst"] = burst
    figures["sign-ins/s"] = 20 * args.rounds / signing

    with probes(base, watcher, room, args.chat_interval) as uploads:
        for _ in range(args.rounds):
            load.submit(upload_burst, base, watcher, pet["id"], photo).result(timeout=300)
    figures["4 uploads"] = uploads
    figures["loop"] = loop_metrics(base)
    return figures


def stall_lines(log_path):
    """What the worker named in its stall log: activity (ids dropped) -> (count, longest ms)."""
    found = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if '"loop_stall"' in line:
            entry = json.loads(line[line.index("{"):])
            activity = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|request_id=\S+", "…", entry["activity"])
            count, longest = found.get(activity, (0, 0.0))
            found[activity] = (count + 1, max(longest, entry["held_ms"]))
    return found


def open_consultations(base_url, rooms):
    for room in rooms:
        doctor = room["members"][0]
        status, body = harness.http_json("POST", f"{base_url}/api/v1/consultations",
                                         {"appointment_id": room["appointment_id"]},
                                         headers={"Authorization": f"Bearer {doctor['token']}"})
        room["consultation_id"] = harness.expect(status, body, 201, "opening a consultation")["id"]


def print_table(results):
    print("\nThrough one gevent worker (ms; x = ratio to the same server with no load): chat delivery (sender emit "
          "-> receiver's socket) and Socket.IO ping round trip")
    print(f"{'server':<12} {'load':<14} {'chat n':>6} {'p50':>7} {'p99':>7} {'p50 x':>6} {'p99 x':>6} "
          f"{'ping n':>6} {'p50':>7} {'p99':>7} {'p50 x':>6} {'p99 x':>6}")
    for label, figures in results.items():
        chat_alone = percentiles(figures["alone"]["chat"]["latencies"])
        ping_alone = percentiles(figures["alone"]["ping"]["round_trips"])
        for load in LOADS:
            chat, ping = figures[load]["chat"], figures[load]["ping"]
            (c50, c99), (p50, p99) = percentiles(chat["latencies"]), percentiles(ping["round_trips"])
            lost = chat["sent"] - len(chat["latencies"])
            print(f"{label:<12} {load:<14} {len(chat['latencies']):>6} {c50:7.1f} {c99:7.1f} "
                  f"{c50 / chat_alone[0]:6.2f} {c99 / chat_alone[1]:6.2f} {len(ping['round_trips']):>6} "
                  f"{p50:7.1f} {p99:7.1f} {p50 / ping_alone[0]:6.2f} {p99 / ping_alone[1]:6.2f}"
                  + (f"  ({lost} chat messages not delivered)" if lost else ""))


def run(args, stack):
    work_dir, env = harness.prepare_database(args, stack, {"PAWMANITY_METRICS_TOKEN": METRICS_TOKEN})
    env["PAWMANITY_UPLOAD_DIR"] = str(work_dir / "uploads")
    servers = (("offloaded", {}), ("on the loop", {"PAWMANITY_CPU_THREADS": "0"}))
    # One consultation per server: a doctor and its patient's owner, with access tokens (15 minutes: enough).
    rooms = json.loads(harness.python_script(env, SEED_SCRIPT, str(len(servers)), *["2"] * len(servers))
                       .strip().splitlines()[-1])
    load = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=os.nice, initargs=(LOAD_NICENESS,)))
    results = {}
    for (label, extra), room in zip(servers, rooms):
        with harness.running_server(label.replace(" ", "-"), "wsgi:app", cwd=harness.REPO, env={**env, **extra},
                                    log_dir=work_dir, ready_path="/api/v1/health") as server:
            open_consultations(server.base_url, [room])
            results[label] = measure(label.split()[0], server, room, load, args)
            results[label]["stalls"] = stall_lines(server.log_path)
    print_table(results)
    print()
    for label, figures in results.items():
        samples, over, stalls = figures["loop"]
        print(f"{label:<12} sign-ins/s {figures['sign-ins/s']:6.1f}   loop samples {samples}, woke > 30 ms late "
              f"{over}, stalls logged {stalls}")
    for label, figures in results.items():
        for activity, (count, longest) in sorted(figures["stalls"].items(), key=lambda item: -item[1][1])[:5]:
            print(f"{label:<12} stall x{count:<3} longest {longest:6.1f} ms  {activity}")
    ratio = results["offloaded"]["sign-ins/s"] / results["on the loop"]["sign-ins/s"]
    print(f"sign-ins/s offloaded / on the loop: {ratio:.2f}")
    print(f"after the runs: {harness.machine_load()}")
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_service_arguments(parser)
    parser.add_argument("--seconds", type=float, default=6, help="baseline time per server, with no load")
    parser.add_argument("--chat-interval", type=float, default=CHAT_INTERVAL,
                        help="seconds between chat messages (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bursts of 20 concurrent sign-ins, and of 4 concurrent uploads, per server")
    args = parser.parse_args()
    harness.check_service_arguments(parser, args)
    return harness.run_bench("loop_bench", run, args)


if __name__ == "__main__":
    sys.exit(main())
