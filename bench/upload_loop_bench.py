"""How long does a photo upload hold the event loop? The worker's own stall log during bursts of concurrent uploads.

Serves PAWMANITY the production way (gunicorn -k gevent -w 1) with the loop monitor's stall threshold lowered to
--threshold-ms, so that every greenlet turn longer than that is logged (`"loop_stall"`, with held_ms: the turn's wall
time, and cpu_ms: the loop thread's CPU during it, which waiting for a core does not inflate). Then, against that one
server: --rounds single uploads one after another (the server otherwise unloaded: the baseline), and --rounds bursts
of --burst concurrent uploads (tests/test_event_loop.py's load: 2000x2000 noisy JPEGs of about 2 MB, multipart).

Per load it prints the stalls logged per upload, the longest held_ms and cpu_ms, how many turns held the loop more
than 30 ms (tests/test_event_loop.py's bound on the loop monitor's lateness), and the ratios of the burst's figures to
the single uploads'. An upload that leaves its whole request parsing on the loop shows one long turn per upload; one
whose CPU-bound steps are offloaded shows none at the default threshold.

    .venv/bin/python bench/upload_loop_bench.py [--database-url URL] [--redis-url URL] [--rounds 3] [--burst 4]
                                                [--threshold-ms 10] [--side 2000]
"""

import argparse
import io
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PASSWORD = "an upload loop bench password 42"
BOUND_MS = 30


def photo_bytes(side, seed):
    buffer = io.BytesIO()
    image = Image.effect_noise((side, side), 64).convert("RGB")
    image.putpixel((seed % side, 0), (seed % 256, 0, 0))  # stored by content: keep each file distinct
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def stall_entries(log_path, skip_lines):
    lines = Path(log_path).read_text(errors="replace").splitlines()
    entries = [json.loads(line[line.index("{"):]) for line in lines[skip_lines:] if '"loop_stall"' in line]
    return entries, len(lines)


def upload(base_url, token, patient_id, data, name):
    started = time.perf_counter()
    answer = requests.post(f"{base_url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"}, timeout=120,
                           data={"patient_id": patient_id}, files={"file": (name, data, "image/jpeg")})
    harness.expect(answer.status_code, answer.text, 201, "upload")
    return time.perf_counter() - started


def measure(server, token, patient_id, photos, concurrency, rounds):
    """`rounds` rounds of `concurrency` concurrent uploads; the stall log entries they caused, and their latencies."""
    _, seen = stall_entries(server.log_path, 0)
    latencies = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for round_ in range(rounds):
            batch = [photos[(round_ * concurrency + n) % len(photos)] for n in range(concurrency)]
            latencies += pool.map(lambda item: upload(server.base_url, token, patient_id, item[1], f"p{item[0]}.jpg"),
                                  enumerate(batch))
    time.sleep(0.3)  # the monitor logs what its tracer queued on its next wake-up
    entries, _ = stall_entries(server.log_path, seen)
    upload_entries = [entry for entry in entries if "/api/v1/uploads" in entry["activity"]]
    return {"uploads": rounds * concurrency, "entries": upload_entries, "others": len(entries) - len(upload_entries),
            "latency": sorted(latencies)}


def summary(figures):
    entries = figures["entries"]
    held = [entry["held_ms"] for entry in entries]
    cpu = [entry["cpu_ms"] for entry in entries]
    return {"stalls/upload": len(entries) / figures["uploads"],
            "max held_ms": max(held, default=0.0), "max cpu_ms": max(cpu, default=0.0),
            f"held>{BOUND_MS}ms": sum(1 for value in held if value > BOUND_MS),
            "p50 latency ms": figures["latency"][len(figures["latency"]) // 2] * 1000}


def run(args, stack):
    work_dir, env = harness.prepare_database(args, stack, {
        "PAWMANITY_LOOP_STALL_THRESHOLD_MS": str(args.threshold_ms)})
    env["PAWMANITY_UPLOAD_DIR"] = str(work_dir / "uploads")
    print(f"making {args.rounds * args.burst + args.rounds} {args.side}x{args.side} photos ...", flush=True)
    photos = [photo_bytes(args.side, seed) for seed in range(args.rounds * args.burst + args.rounds)]
    print(f"photo sizes: {min(map(len, photos)) / 1e6:.2f}-{max(map(len, photos)) / 1e6:.2f} MB", flush=True)
    with harness.running_server("upload-loop", args.app, cwd=harness.REPO, env=env, log_dir=work_dir,
                                ready_path="/api/v1/health") as server:
        base = server.base_url
        email = f"uploader-{uuid.uuid4().hex[:8]}@example.com"
        status, body = harness.http_json("POST", f"{base}/api/v1/auth/register", {
            "email": email, "password": PASSWORD, "full_name": "Upload Loop Bench", "role": "patient"}, timeout=60)
        harness.expect(status, body, 201, "register")
        status, body = harness.http_json("POST", f"{base}/api/v1/auth/login", {"email": email, "password": PASSWORD},
                                         timeout=60)
        token = harness.expect(status, body, 200, "sign in")["access_token"]
        status, body = harness.http_json("POST", f"{base}/api/v1/patients",
                                         {"name": "Biscuit", "species": "dog", "sex": "male"},
                                         headers={"Authorization": f"Bearer {token}"})
        patient_id = harness.expect(status, body, 201, "patient")["id"]
        upload(base, token, patient_id, photos[-1], "warm-up.jpg")  # imports, the pool's threads, connections
        single = measure(server, token, patient_id, photos[args.rounds * args.burst:], 1, args.rounds)
        burst = measure(server, token, patient_id, photos, args.burst, args.rounds)
    results = {"1 upload alone": summary(single), f"{args.burst} concurrent": summary(burst)}
    print(f"\nstall log of one gevent worker, threshold {args.threshold_ms} ms ({args.rounds} rounds per load)")
    keys = list(results["1 upload alone"])
    print(f"{'load':<16}" + "".join(f"{key:>16}" for key in keys))
    for label, figures in results.items():
        print(f"{label:<16}" + "".join(f"{figures[key]:>16.1f}" for key in keys))
    alone, loaded = results["1 upload alone"], results[f"{args.burst} concurrent"]
    print(f"{'burst / alone':<16}" + "".join(
        f"{loaded[key] / alone[key]:>16.2f}" if alone[key] else f"{'-':>16}" for key in keys))
    for label, figures in (("alone", single), ("burst", burst)):
        turns = ", ".join(f"{entry['held_ms']:.0f}/{entry['cpu_ms']:.0f}" for entry in figures["entries"])
        print(f"{label} upload turns held/cpu ms: {turns or 'none'}; other stalls logged: {figures['others']}")
    print(f"after the runs: {harness.machine_load()}")
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_service_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="single uploads, and bursts, per load")
    parser.add_argument("--burst", type=int, default=4, help="concurrent uploads per burst")
    parser.add_argument("--threshold-ms", type=int, default=10, help="the worker's loop stall threshold")
    parser.add_argument("--side", type=int, default=2000, help="photo width and height in pixels")
    parser.add_argument("--app", default="wsgi:app", help=argparse.SUPPRESS)  # a wrapper app, for profiling
    args = parser.parse_args()
    harness.check_service_arguments(parser, args)
    return harness.run_bench("upload_loop_bench", run, args)


if __name__ == "__main__":
    sys.exit(main())
