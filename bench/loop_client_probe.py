"""Where does a Socket.IO client's round trip go while the server signs people in? Compares pingers on one server.

Serves PAWMANITY the production way (gunicorn -k gevent -w 1, offloaded hashing) and pings /notifications every
10 ms with several clients in turn, alone and during bursts of 20 concurrent sign-ins: python-socketio's Client in a
thread of the process that also makes the sign-ins (as bench/loop_bench.py did), the same Client in a process of its
own with the sign-ins from a niced process (as tests/test_event_loop.py did), and tests/socket_probe.py's one-thread
client in a process of its own. For each: round trip p50/p99/max, how late the pinger's own 10 ms sleeps woke (the
client's scheduling delay, which the server cannot cause), and the worker's loop-lag histogram over the same window.

    .venv/bin/python bench/loop_client_probe.py [--database-url URL] [--redis-url URL] [--rounds 3]
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import socketio as socketio_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import harness  # noqa: E402
from loop_bench import register, sign_in, sign_in_burst  # noqa: E402  (the same accounts and load as the bench)

from tests import socket_probe  # noqa: E402

METRICS_TOKEN = "loop-probe-metrics-token"


def socketio_ping_every(base_url, token, interval, ready, stop, results):
    """As socket_probe.ping_every, with python-socketio's Client (reader and writer threads)."""
    client = socketio_client.Client(reconnection=False)
    client.connect(base_url, auth={"token": token}, transports=["websocket"], namespaces=["/notifications"],
                   wait_timeout=10)
    round_trips, late = [], []
    try:
        client.call("ping", 0, namespace="/notifications", timeout=10)
        ready.set()
        while not stop.is_set():
            sent = time.perf_counter()
            client.call("ping", 1, namespace="/notifications", timeout=10)
            round_trips.append(time.perf_counter() - sent)
            asleep = time.perf_counter()
            time.sleep(interval)
            late.append(time.perf_counter() - asleep - interval)
    finally:
        client.disconnect()
        results.put((round_trips, late))


@contextmanager
def socketio_thread_pinging(base_url, token, interval=0.010):
    """python-socketio's Client in a thread of this process (which also makes the load)."""
    stop, ready = threading.Event(), threading.Event()

    class Results:
        def put(self, item):
            self.item = item

    results = Results()
    thread = threading.Thread(target=socketio_ping_every, args=(base_url, token, interval, ready, stop, results))
    thread.start()
    ready.wait(30)
    figures = {}
    try:
        yield figures
    finally:
        stop.set()
        thread.join(30)
        figures.update(round_trips=results.item[0], late=results.item[1])


def lag_buckets(base_url):
    buckets, total, _ = socket_probe.loop_metrics(base_url, METRICS_TOKEN)
    return buckets, total


def over(before, after, bound):
    """Loop wake-ups later than `bound` seconds between two readings."""
    return int((after[1] - after[0][bound]) - (before[1] - before[0][bound]))


def ms(samples, q):
    return statistics.quantiles(samples, n=100)[q - 1] * 1000 if len(samples) > 1 else float("nan")


def measure(base, watcher, emails, pinging, load_process, rounds, alone_seconds):
    rows = {}
    before = lag_buckets(base)
    with pinging(base, watcher) as alone:
        time.sleep(alone_seconds)
    rows["alone"] = (alone, before, lag_buckets(base))
    before = lag_buckets(base)
    with pinging(base, watcher) as burst:
        for _ in range(rounds):
            if load_process is None:
                sign_in_burst(base, emails)
            else:
                load_process.submit(sign_in_burst, base, emails).result(timeout=120)
    rows["sign-in bursts"] = (burst, before, lag_buckets(base))
    return rows


def run(args, stack):
    work_dir, env = harness.prepare_database(args, stack, {"PAWMANITY_METRICS_TOKEN": METRICS_TOKEN})
    server = stack.enter_context(harness.running_server("probe", "wsgi:app", cwd=harness.REPO, env=env,
                                                        log_dir=work_dir, ready_path="/api/v1/health"))
    base = server.base_url
    emails = [register(base, f"probe{n}") for n in range(4)]
    watcher = sign_in(base, register(base, "watcher"))
    niced = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=os.nice, initargs=(10,)))
    niced.submit(time.sleep, 0).result(timeout=60)
    variants = {
        "socketio thread, load same process": (socketio_thread_pinging, None),
        "socketio own process, load niced": (
            lambda b, t: socket_probe.pinging(b, t, target=socketio_ping_every), niced),
        "lean own process, load niced": (socket_probe.pinging, niced),
        "lean own process, load same nice": (socket_probe.pinging, "plain"),
    }
    plain = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")))
    plain.submit(time.sleep, 0).result(timeout=60)
    sign_in_burst(base, emails)  # warm-up
    results = {}
    for label, (pinging, load) in variants.items():
        load = plain if load == "plain" else load
        results[label] = measure(base, watcher, emails, pinging, load, args.rounds, args.seconds)
    print("\nping round trip (ms), the pinger's own 10 ms sleeps woke late by (ms), the worker's loop wake-ups late "
          "by more than 5/10/20/30 ms (count)")
    print(f"{'pinger':<36} {'load':<15} {'n':>5} {'p50':>6} {'p99':>6} {'max':>6} {'late p99':>8} {'late max':>8} "
          f"{'loop>5':>6} {'>10':>4} {'>20':>4} {'>30':>4}")
    for label, rows in results.items():
        for load, (figures, before, after) in rows.items():
            trips, late = figures["round_trips"], figures["late"]
            print(f"{label:<36} {load:<15} {len(trips):>5} {ms(trips, 50):6.1f} {ms(trips, 99):6.1f} "
                  f"{max(trips) * 1000:6.1f} {ms(late, 99):8.1f} {max(late) * 1000:8.1f} "
                  f"{over(before, after, 0.005):>6} {over(before, after, 0.01):>4} {over(before, after, 0.02):>4} "
                  f"{over(before, after, 0.03):>4}")
    print(f"after the runs: {harness.machine_load()}")
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_service_arguments(parser)
    parser.add_argument("--seconds", type=float, default=3, help="ping time with no load, per pinger")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of 20 concurrent sign-ins per pinger")
    args = parser.parse_args()
    harness.check_service_arguments(parser, args)
    return harness.run_bench("loop_client_probe", run, args)


if __name__ == "__main__":
    sys.exit(main())
