"""Does anything stall the event loop? Socket.IO round trips through one gevent worker while others sign in or upload.

Serves PAWMANITY the production way (gunicorn -k gevent -w 1, production argon2 parameters) twice in the same run:
with CPU-bound work on the offload pools (the default) and with the `cpu` pool turned off (PAWMANITY_CPU_THREADS=0:
password hashing back on the event loop, as before issue 16). For each, a Socket.IO client pings every 10 ms:
alone (the baseline), during bursts of 20 concurrent sign-ins, and during 4 concurrent photo uploads. Prints the
ping round trip p50/p99 as ratios to the same server's baseline, sign-ins per second, and the worker's own loop-lag
histogram and stall count.

    .venv/bin/python bench/loop_bench.py [--database-url URL] [--redis-url URL] [--seconds 4] [--rounds 3]
"""

import argparse
import io
import json
import re
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import socketio as socketio_client
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PASSWORD = "a loop bench password 42"
METRICS_TOKEN = "loop-bench-metrics-token"


class Pinger:
    def __init__(self, base_url, token):
        self.client = socketio_client.Client(reconnection=False)
        self.client.connect(base_url, auth={"token": token}, transports=["websocket"], namespaces=["/notifications"],
                            wait_timeout=10)
        self.round_trips, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            sent = time.perf_counter()
            self.client.call("ping", None, namespace="/notifications", timeout=30)
            self.round_trips.append(time.perf_counter() - sent)
            time.sleep(0.010)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self.client.disconnect()


def percentiles(samples):
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


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


def photo_bytes(side=2000):
    buffer = io.BytesIO()
    Image.effect_noise((side, side), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def loop_metrics(base_url):
    text = requests.get(f"{base_url}/api/v1/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    count = float(re.search(r"^pawmanity_event_loop_lag_seconds_count (\S+)$", text, re.M).group(1))
    over = count - float(re.search(r'pawmanity_event_loop_lag_seconds_bucket\{le="0.03"\} (\S+)', text).group(1))
    stalls = float(re.search(r"^pawmanity_event_loop_stalls_total (\S+)$", text, re.M).group(1))
    return int(count), int(over), int(stalls)


def measure(label, server, args):
    base = server.base_url
    emails = [register(base, f"{label}{n}") for n in range(4)]
    watcher = sign_in(base, register(base, f"{label}-watcher"))
    headers = {"Authorization": f"Bearer {watcher}"}
    pet = requests.post(f"{base}/api/v1/patients", headers=headers, timeout=30,
                        json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
    photo = photo_bytes()
    figures = {}

    with Pinger(base, watcher) as pinger:
        time.sleep(args.seconds)
    figures["alone"] = percentiles(pinger.round_trips)

    signed_in, started = 0, time.perf_counter()
    with Pinger(base, watcher) as pinger, ThreadPoolExecutor(max_workers=20) as pool:
        for _ in range(args.rounds):
            signed_in += len(list(pool.map(lambda n: sign_in(base, emails[n % 4]), range(20))))
    figures["sign-in burst"] = percentiles(pinger.round_trips)
    figures["sign-ins/s"] = signed_in / (time.perf_counter() - started)

    def upload(n):
        answer = requests.post(f"{base}/api/v1/uploads", headers=headers, timeout=120, data={"patient_id": pet["id"]},
                               files={"file": (f"p{n}.jpg", photo, "image/jpeg")})
        harness.expect(answer.status_code, answer.text, 201, "upload")

    with Pinger(base, watcher) as pinger, ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(upload, range(4)))
    figures["4 uploads"] = percentiles(pinger.round_trips)
    figures["loop"] = loop_metrics(base)
    return figures


def stall_lines(log_path):
    """What the worker named in its stall log: activity (ids dropped) -> (count, longest ms)."""
    found = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if '"loop_stall"' in line:
            entry = json.loads(line[line.index("{"):])
            activity = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|request_id=\\S+", "…", entry["activity"])
            count, longest = found.get(activity, (0, 0.0))
            found[activity] = (count + 1, max(longest, entry["held_ms"]))
    return found


def run(args, stack):
    work_dir, env = harness.prepare_database(args, stack, {"PAWMANITY_METRICS_TOKEN": METRICS_TOKEN})
    env["PAWMANITY_UPLOAD_DIR"] = str(work_dir / "uploads")
    results = {}
    for label, extra in (("offloaded", {}), ("on the loop", {"PAWMANITY_CPU_THREADS": "0"})):
        with harness.running_server(label.replace(" ", "-"), "wsgi:app", cwd=harness.REPO, env={**env, **extra},
                                    log_dir=work_dir, ready_path="/api/v1/health") as server:
            results[label] = measure(label.split()[0], server, args)
            results[label]["stalls"] = stall_lines(server.log_path)
    print("\nSocket.IO ping round trip through one gevent worker (ms; ratio to the same server with no load)")
    print(f"{'server':<13} {'load':<15} {'p50':>7} {'p99':>7} {'p50 x':>7} {'p99 x':>7}")
    for label, figures in results.items():
        alone = figures["alone"]
        for load in ("alone", "sign-in burst", "4 uploads"):
            p50, p99 = figures[load]
            print(f"{label:<13} {load:<15} {p50:7.1f} {p99:7.1f} {p50 / alone[0]:7.2f} {p99 / alone[1]:7.2f}")
    print()
    for label, figures in results.items():
        samples, over, stalls = figures["loop"]
        print(f"{label:<13} sign-ins/s {figures['sign-ins/s']:6.1f}   loop samples {samples}, woke > 30 ms late "
              f"{over}, stalls logged {stalls}")
    for label, figures in results.items():
        for activity, (count, longest) in sorted(figures["stalls"].items(), key=lambda item: -item[1][1])[:5]:
            print(f"{label:<13} stall x{count:<3} longest {longest:6.1f} ms  {activity}")
    ratio = results["offloaded"]["sign-ins/s"] / results["on the loop"]["sign-ins/s"]
    print(f"sign-ins/s offloaded / on the loop: {ratio:.2f}")
    print(f"machine load (1 min): {Path('/proc/loadavg').read_text().split()[0]}")
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_service_arguments(parser)
    parser.add_argument("--seconds", type=float, default=4, help="baseline ping time per server")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of 20 concurrent sign-ins per server")
    args = parser.parse_args()
    harness.check_service_arguments(parser, args)
    return harness.run_bench("loop_bench", run, args)


if __name__ == "__main__":
    sys.exit(main())
