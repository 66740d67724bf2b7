"""Photo uploads: latency, throughput, server CPU and memory of POST /api/v1/uploads with ~10 MB phone-like JPEGs.

Run from the repository root:

    .venv/bin/python bench/upload_bench.py [--uploads 30] [--size-mb 10] [--concurrency 1]
                                           [--database-url URL] [--redis-url URL] [--profile PATH]

What it does, all on 127.0.0.1:
  1. makes a 4000x3000 photo-like JPEG (smooth colour gradients plus sensor-like noise) whose JPEG quality is chosen
     so that it weighs about --size-mb, carrying EXIF with GPS coordinates, a camera maker and orientation 6 ("rotate
     90 degrees clockwise to display"), as a phone would write it;
  2. drops and re-creates the PostgreSQL database `pawmanity_bench` (or the one named in --database-url, whose name
     must contain "bench"), runs the migrations and starts PAWMANITY as `gunicorn -k gevent -w 1 wsgi:app` with
     PAWMANITY_CONFIG=production and PAWMANITY_UPLOAD_DIR in a temporary directory;
  3. registers and signs in one patient account and gives it a dog (POST /api/v1/patients);
  4. sends one unmeasured warm-up upload, then --uploads measured ones from --concurrency threads, each thread on its
     own keep-alive connection. Every file differs in a few pixels (the server re-encodes the pixels and stores files
     by the SHA-256 of the result, so identical pixels would be stored once). The files are encoded by a producer
     thread a few uploads ahead, outside the timed requests;
  5. prints p50/p99 latency (the client's wall time of each request on loopback: sending 10 MB, the server's work,
     the JSON answer), MB/s (input bytes / wall time of the measured uploads), the server's CPU time per upload
     (utime+stime of the gunicorn worker from /proc), the worker's resident memory (VmRSS) before, during and after
     the run and its peak (VmHWM), and how much CPU the rest of the machine used meanwhile;
  6. downloads the last upload (GET /api/v1/uploads/{id}/content) and checks that it has no EXIF, no GPS and no
     camera maker left, that its SHA-256 is the one the server announced and that it was turned upright (PASS/FAIL);
  7. checks the target: p50 latency under 400 ms (PASS/NOT MET);
  8. stops the server, drops the database and removes the temporary directories, also on Ctrl-C or an error.

With --profile PATH, py-spy (from the venv) samples the gunicorn worker during the measured uploads, writes the
collapsed stacks to PATH and prints the hottest functions; sampling slows the server a little, so use a separate
run for the numbers.

The exit status is 0 when every upload answered 201, the downloaded copy is clean and the server log shows no error.
"""

import argparse
import hashlib
import http.client
import io
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy
from harness import (
    HOST,
    REPO,
    VENV_BIN,
    BenchError,
    add_service_arguments,
    check_service_arguments,
    cpu_ticks,
    expect,
    http_json,
    log_problems,
    log_tail,
    machine_busy_ticks,
    prepare_database,
    print_log_exceptions,
    print_log_problems,
    run_bench,
    running_server,
    ticks_to_ms,
    worker_pid,
)
from PIL import Image

API = "/api/v1"
EMAIL = "upload.bench@example.com"
PASSWORD = "bench passphrase 2026"

WIDTH, HEIGHT = 4000, 3000  # 12 megapixels, as a phone camera
ORIENTATION_TAG, MAKE_TAG, GPS_IFD = 0x0112, 0x010F, 0x8825
ORIENTATION = 6  # rotate 90 degrees clockwise to display: the server must store it 3000 wide, 4000 high
CAMERA_MAKER = "BenchPhoneMaker"
GPS = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPSLatitudeRef, GPSLatitude, ...

P50_TARGET_MS = 400
REQUEST_TIMEOUT = 60  # seconds per request
MAX_UPLOADS = 2000  # access tokens live 15 minutes and are not refreshed here
MAX_ROWS_PRINTED = 30  # of the per-upload table


@dataclass
class Sample:
    """One measured upload."""
    number: int
    seconds: float
    input_bytes: int
    status: int
    answer: dict | str
    cpu_ms: float | None  # the worker's CPU time during the request; only when uploads run one at a time
    rss_kib: int  # the worker's VmRSS right after the answer


@dataclass
class Run:
    samples: list
    errors: Counter = field(default_factory=Counter)  # exception name -> count
    elapsed: float = 0.0
    worker_cpu_ms: float = 0.0
    own_cpu_ms: float = 0.0
    machine_busy_ms: float = 0.0


# --- command line --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30, help="measured uploads (default 30)")
    parser.add_argument("--size-mb", type=float, default=10.0, help="size of each JPEG in MB of 10^6 bytes "
                                                                    "(default 10; the server takes at most 20 MiB)")
    parser.add_argument("--concurrency", type=int, default=1, help="uploads in flight at once (default 1)")
    parser.add_argument("--profile", type=Path, metavar="PATH",
                        help="sample the worker with py-spy during the uploads; collapsed stacks go to PATH")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.uploads <= MAX_UPLOADS:
        parser.error(f"--uploads must be between 1 and {MAX_UPLOADS}")
    if not 0.5 <= args.size_mb <= 20:
        parser.error("--size-mb must be between 0.5 and 20 (the server takes at most 20 MiB)")
    if not 1 <= args.concurrency <= 32:
        parser.error("--concurrency must be between 1 and 32")
    check_service_arguments(parser, args)
    return args


# --- the photos ----------------------------------------------------------------------------------------------------

def phone_exif():
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = ORIENTATION
    exif[MAKE_TAG] = CAMERA_MAKER
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif.tobytes()


class PhotoMaker:
    """Photo-like 4000x3000 JPEGs of about `target_bytes`, each one with different pixels."""

    def __init__(self, target_bytes, seed=2026):
        rng = numpy.random.default_rng(seed)
        y, x = numpy.mgrid[0:HEIGHT, 0:WIDTH].astype(numpy.float32)
        scene = numpy.stack([128 + 80 * numpy.sin(x / 500 + y / 700),
                             120 + 70 * numpy.cos(x / 350 - y / 900),
                             110 + 60 * numpy.sin((x + y) / 800)], axis=-1)
        del x, y
        self.exif = phone_exif()
        self.target_bytes = target_bytes
        self.quality = 95
        # Sensor-like noise makes the file heavy; more of it when even a high quality stays below the target.
        for sigma in (24, 40, 64, 96):
            noise = rng.normal(0, sigma, scene.shape).astype(numpy.float32)
            self.pixels = numpy.clip(scene + noise, 0, 255).astype(numpy.uint8)
            self.quality = self._quality_for_target()
            if len(self.encode(self.pixels)) >= 0.9 * target_bytes:
                break

    def encode(self, pixels):
        output = io.BytesIO()
        Image.fromarray(pixels).save(output, format="JPEG", quality=self.quality, exif=self.exif)
        return output.getvalue()

    def _quality_for_target(self):
        """The JPEG quality (50..98) whose file size comes closest to the target."""
        sizes = {}
        low, high = 50, 98
        while low <= high:
            self.quality = (low + high) // 2
            sizes[self.quality] = len(self.encode(self.pixels))
            if sizes[self.quality] < self.target_bytes:
                low = self.quality + 1
            else:
                high = self.quality - 1
        return min(sizes, key=lambda quality: abs(sizes[quality] - self.target_bytes))

    def photo(self, number):
        """Photo `number`: a 16x16 block of its pixels carries the number, so that no two are alike."""
        pixels = self.pixels.copy()
        for bit in range(32):
            value = 255 if (number >> bit) & 1 else 0
            row, column = 16 + (bit // 8) * 16, 16 + (bit % 8) * 16
            pixels[row:row + 16, column:column + 16] = value
        return self.encode(pixels)


def producer(maker, numbers, ready, stop, failures):
    """Encode the photos a few uploads ahead of the clients; the queue is bounded, so is the memory."""
    try:
        for number in numbers:
            item = (number, maker.photo(number))
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.5)
                    break
                except queue.Full:
                    pass
    except Exception as error:  # reported by run_uploads
        failures.append(error)


# --- HTTP ----------------------------------------------------------------------------------------------------------

def set_up_account(base_url):
    """A signed-in patient account with a dog; (access token, patient id)."""
    status, body = http_json("POST", f"{base_url}{API}/auth/register",
                             {"email": EMAIL, "password": PASSWORD, "full_name": "Upload Bench", "role": "patient"})
    expect(status, body, 201, f"registering {EMAIL}")
    status, body = http_json("POST", f"{base_url}{API}/auth/login", {"email": EMAIL, "password": PASSWORD})
    token = expect(status, body, 200, f"signing in {EMAIL}")["access_token"]
    status, body = http_json("POST", f"{base_url}{API}/patients", {"name": "Rex", "species": "dog"},
                             headers={"Authorization": f"Bearer {token}"})
    return token, expect(status, body, 201, f"POST {API}/patients")["id"]


def multipart(patient_id, photo, filename):
    """(content type, body) of the upload form: patient_id and the file."""
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="patient_id"\r\n\r\n{patient_id}\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode()
    return f"multipart/form-data; boundary={boundary}", head + photo + f"\r\n--{boundary}--\r\n".encode()


class Uploader:
    """One keep-alive connection that posts upload forms; re-opened after an error."""

    def __init__(self, port, token, patient_id):
        self.port, self.patient_id = port, patient_id
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.connection = None

    def prepare(self, number, photo):
        content_type, body = multipart(self.patient_id, photo, f"IMG_{number:04d}.jpg")
        return {**self.headers, "Content-Type": content_type}, body

    def send(self, headers, body):
        """POST the prepared form; (status, decoded answer)."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        self.connection.request("POST", f"{API}/uploads", body=body, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")[:500]

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def upload_once(uploader, number, photo):
    status, answer = uploader.send(*uploader.prepare(number, photo))
    if status != 201:
        raise BenchError(f"upload {number} answered {status}: {answer}")
    return answer


def download(port, token, upload_id):
    """The stored copy of an upload, and the seconds its download took."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        begin = time.perf_counter()
        connection.request("GET", f"{API}/uploads/{upload_id}/content", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - begin
    finally:
        connection.close()
    if response.status != 200:
        raise BenchError(f"GET {API}/uploads/{upload_id}/content answered {response.status}: {data[:500]!r}")
    return data, seconds


# --- the worker's memory -------------------------------------------------------------------------------------------

def memory_kib(pid):
    """{"VmRSS": kib, "VmHWM": kib} of a process, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def mib(kib):
    return kib / 1024


# --- the load ------------------------------------------------------------------------------------------------------

def client_loop(uploader, ready, pid, one_at_a_time, run, lock):
    """Upload the photos of the queue until its None; with one client, read the worker's CPU time around each."""
    while (item := ready.get()) is not None:
        number, photo = item
        headers, body = uploader.prepare(number, photo)
        ticks_before = cpu_ticks(pid) if one_at_a_time else None
        begin = time.perf_counter()
        try:
            status, answer = uploader.send(headers, body)
        except Exception as error:  # a connection error (or worse): counted, and the next upload goes on
            uploader.close()
            with lock:
                run.errors[type(error).__name__] += 1
            continue
        seconds = time.perf_counter() - begin
        cpu_ms = ticks_to_ms(cpu_ticks(pid) - ticks_before) if one_at_a_time else None
        sample = Sample(number=number, seconds=seconds, input_bytes=len(photo), status=status, answer=answer,
                        cpu_ms=cpu_ms, rss_kib=memory_kib(pid)["VmRSS"])
        with lock:
            run.samples.append(sample)


def run_uploads(server, maker, token, patient_id, args):
    """The measured uploads; the photos are encoded by a producer thread, ahead of the clients."""
    pid = worker_pid(server)
    ready = queue.Queue(maxsize=args.concurrency + 1)
    stop, failures = threading.Event(), []
    feeder = threading.Thread(target=producer, args=(maker, range(1, args.uploads + 1), ready, stop, failures),
                              daemon=True)
    feeder.start()
    while not ready.full() and feeder.is_alive():  # a head start, so that the first uploads do not wait for it
        time.sleep(0.05)

    run, lock = Run(samples=[]), threading.Lock()
    uploaders = [Uploader(server.port, token, patient_id) for _ in range(args.concurrency)]
    clients = [threading.Thread(target=client_loop, args=(uploader, ready, pid, args.concurrency == 1, run, lock),
                                daemon=True) for uploader in uploaders]
    deadline = time.monotonic() + 60 + args.uploads * REQUEST_TIMEOUT / args.concurrency
    own_before, worker_before, machine_before = own_cpu_seconds(), cpu_ticks(pid), machine_busy_ticks()
    begin = time.perf_counter()
    try:
        for client in clients:
            client.start()
        feeder.join(timeout=max(0.0, deadline - time.monotonic()))
        for _ in clients:
            ready.put(None, timeout=max(0.1, deadline - time.monotonic()))
        for client in clients:
            client.join(timeout=max(0.0, deadline - time.monotonic()))
        if feeder.is_alive() or any(client.is_alive() for client in clients):
            raise BenchError("the uploads did not finish in time")
    except queue.Full:
        raise BenchError("the uploads did not finish in time") from None
    finally:
        stop.set()
        for uploader in uploaders:
            uploader.close()
    run.elapsed = time.perf_counter() - begin
    run.worker_cpu_ms = ticks_to_ms(cpu_ticks(pid) - worker_before)
    run.own_cpu_ms = (own_cpu_seconds() - own_before) * 1000
    run.machine_busy_ms = ticks_to_ms(machine_busy_ticks() - machine_before)
    if failures:
        raise BenchError(f"making the photos failed: {failures[0]!r}")
    if worker_pid(server) != pid:
        raise BenchError(f"the gunicorn worker was replaced during the run:\n{log_tail(server.log_path)}")
    if not run.samples:
        raise BenchError(f"no upload was answered; connection errors: {dict(run.errors)}")
    run.samples.sort(key=lambda sample: sample.number)
    return run


def own_cpu_seconds():
    times = os.times()
    return times.user + times.system


# --- py-spy --------------------------------------------------------------------------------------------------------

def start_profiler(pid, path):
    py_spy = VENV_BIN / "py-spy"
    if not py_spy.exists():
        raise BenchError(f"--profile needs py-spy at {py_spy}")
    command = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--output", str(path),
               "--nonblocking"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaches
    if process.poll() is not None:
        raise BenchError(f"py-spy failed: {process.stderr.read()}")
    return process


def stop_profiler(process):
    process.send_signal(signal.SIGINT)  # py-spy writes its output and exits
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


APP_FRAMES = ("pawmanity/", "blueprints/", "werkzeug/formparser.py")  # the app's code and the multipart parser


def print_profile(path, top=15):
    """Where the worker's samples were: the innermost functions (self), and the lines of the app's own code (and of
    werkzeug's multipart parser) they were under (inclusive), hottest first."""
    if not path.exists():
        print(f"py-spy wrote no profile to {path}")
        return
    own, under, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, count = stack.split(";"), int(count)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if any(part in frame for part in APP_FRAMES):
                under[frame] += count
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"\npy-spy: {total} samples of the worker (collapsed stacks in {path})")
    for title, counter in (("innermost functions (self)", own), ("lines of the app's code (inclusive)", under)):
        print(f"  hottest {title}:")
        for frame, count in counter.most_common(top):
            print(f"    {count / total:6.1%}  {frame[:150]}")


# --- checks and report ---------------------------------------------------------------------------------------------

def check_download(data, answer):
    """What is wrong with the downloaded copy of a photo; empty when nothing is."""
    problems = []
    if hashlib.sha256(data).hexdigest() != answer["sha256"]:
        problems.append("its SHA-256 differs from the one the upload answered")
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    if dict(exif):
        problems.append(f"EXIF tags left: {sorted(exif)}")
    if exif.get_ifd(GPS_IFD):
        problems.append("GPS left")
    if b"Exif\x00\x00" in data:
        problems.append("an EXIF block (APP1 'Exif') is in the bytes")
    if CAMERA_MAKER.encode() in data:
        problems.append("the camera maker is in the bytes")
    if image.size != (HEIGHT, WIDTH):
        problems.append(f"size {image.size[0]}x{image.size[1]}, not {HEIGHT}x{WIDTH} (orientation not applied)")
    return problems


def percentile(values, fraction):
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def print_samples(samples):
    step = max(1, math.ceil(len(samples) / MAX_ROWS_PRINTED))
    print(f"{'upload':>6} {'status':>6} {'MB in':>6} {'MB stored':>9} {'ms':>8} {'CPU ms':>7} {'RSS MiB':>8}")
    for index, sample in enumerate(samples):
        if index % step and index != len(samples) - 1:
            continue
        stored = sample.answer.get("size", 0) / 1e6 if isinstance(sample.answer, dict) else float("nan")
        cpu = f"{sample.cpu_ms:7.0f}" if sample.cpu_ms is not None else f"{'-':>7}"
        print(f"{sample.number:>6} {sample.status:>6} {sample.input_bytes / 1e6:>6.2f} {stored:>9.2f} "
              f"{sample.seconds * 1000:>8.1f} {cpu} {mib(sample.rss_kib):>8.1f}")
    if step > 1:
        print(f"(every {step}th upload shown)")


def print_report(args, maker, run, memory):
    samples = run.samples
    ok = [sample for sample in samples if sample.status == 201]
    latencies = sorted(sample.seconds * 1000 for sample in samples)
    total_bytes = sum(sample.input_bytes for sample in samples)
    print()
    print_samples(samples)
    statuses = Counter(sample.status for sample in samples)
    by_status = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    print(f"\nuploads:             {len(samples)} answered ({by_status}), {sum(run.errors.values())} connection errors"
          + "".join(f"\n  {name}: {n}" for name, n in sorted(run.errors.items())))
    distinct = len({sample.answer["sha256"] for sample in ok})
    print(f"distinct files:      {distinct} of {len(ok)} stored (content addressing did not skip any)"
          if distinct == len(ok) else f"distinct files:      only {distinct} of {len(ok)}: some were deduplicated")
    print(f"input:               {WIDTH}x{HEIGHT} JPEG, quality {maker.quality}, "
          f"{total_bytes / len(samples) / 1e6:.2f} MB each on average, concurrency {args.concurrency}")
    if ok:
        stored = sum(sample.answer["size"] for sample in ok) / len(ok)
        print(f"stored:              {stored / 1e6:.2f} MB each on average (re-encoded at the server's quality 90)")
    print(f"latency:             p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
          f"min {latencies[0]:.1f} ms, max {latencies[-1]:.1f} ms")
    print(f"throughput:          {total_bytes / 1e6 / run.elapsed:.1f} MB/s of input "
          f"({total_bytes / 1e6:.0f} MB in {run.elapsed:.2f} s), {len(samples) / run.elapsed:.2f} uploads/s")
    per_upload = run.worker_cpu_ms / len(samples)
    cpu_values = sorted(sample.cpu_ms for sample in samples if sample.cpu_ms is not None)
    spread = (f"; per request p50 {percentile(cpu_values, 0.5):.0f} ms, max {cpu_values[-1]:.0f} ms"
              if cpu_values else "")
    print(f"server CPU:          {per_upload:.0f} ms per upload (gunicorn worker, utime+stime{spread}; "
          f"{run.worker_cpu_ms / 10 / run.elapsed:.0f}% of a core over the run)")
    others = run.machine_busy_ms - run.worker_cpu_ms - run.own_cpu_ms
    print(f"rest of the machine: this script {run.own_cpu_ms / 1000:.1f} s CPU, everything else (PostgreSQL, other "
          f"processes) {max(0.0, others) / 1000:.1f} s, on {os.cpu_count()} cores over {run.elapsed:.1f} s")
    if others > 0.25 * run.elapsed * 1000:
        print("                     (something else kept a core busy meanwhile: latencies may be inflated; the "
              "server's CPU time per upload is the steadier figure)")
    rss = [sample.rss_kib for sample in samples]
    half = rss[len(rss) // 2:] or rss
    print(f"worker memory:       RSS {mib(memory['start']['VmRSS']):.0f} MiB at start, "
          f"{mib(memory['warm']['VmRSS']):.0f} MiB after the warm-up upload, "
          f"{mib(memory['end']['VmRSS']):.0f} MiB after the run; peak (VmHWM) {mib(memory['end']['VmHWM']):.0f} MiB "
          f"(was {mib(memory['warm']['VmHWM']):.0f} MiB after the warm-up)")
    first, later = rss[0] - memory["warm"]["VmRSS"], memory["end"]["VmRSS"] - rss[0]
    print(f"RSS growth:          {mib(first):+.1f} MiB at the first measured upload, then {mib(later):+.1f} MiB over "
          f"the {len(rss) - 1} others ({mib(later) / max(1, len(rss) - 1):+.2f} MiB per upload); second half of the "
          f"run: RSS between {mib(min(half)):.0f} and {mib(max(half)):.0f} MiB")
    peak_over_start = memory["end"]["VmHWM"] - memory["start"]["VmRSS"]
    print(f"memory per upload:   peak {mib(peak_over_start):.0f} MiB above the idle worker "
          f"(= {peak_over_start * 1024 / (total_bytes / len(samples)):.1f} x the file size)")


def check_target(run):
    latencies = sorted(sample.seconds * 1000 for sample in run.samples)
    p50 = percentile(latencies, 0.5)
    met = p50 < P50_TARGET_MS and not run.errors and all(sample.status == 201 for sample in run.samples)
    print(f"\np50 latency {p50:.1f} ms (target < {P50_TARGET_MS} ms): {'PASS' if met else 'NOT MET'}")
    return met



# --- main ----------------------------------------------------------------------------------------------------------

def run(args, stack):
    print(f"making a {WIDTH}x{HEIGHT} JPEG of about {args.size_mb:g} MB with EXIF GPS and orientation "
          f"{ORIENTATION} ...", flush=True)
    maker = PhotoMaker(int(args.size_mb * 1e6))
    print(f"  JPEG quality {maker.quality}: {len(maker.photo(0)) / 1e6:.2f} MB", flush=True)

    work_dir, env = prepare_database(args, stack)
    upload_dir = work_dir / "uploads"
    env["PAWMANITY_UPLOAD_DIR"] = str(upload_dir)

    print("starting PAWMANITY (gunicorn -k gevent -w 1) ...", flush=True)
    servers, clean_copy, log_clean = [], None, False
    try:
        with running_server("pawmanity", "wsgi:app", cwd=REPO, env=env, log_dir=work_dir,
                            ready_path=f"{API}/health") as app:
            servers.append(app)
            token, patient_id = set_up_account(app.base_url)
            pid = worker_pid(app)
            memory = {"start": memory_kib(pid)}
            warm = Uploader(app.port, token, patient_id)
            try:
                warm_answer = upload_once(warm, 0, maker.photo(0))
            finally:
                warm.close()
            memory["warm"] = memory_kib(pid)
            print(f"warm-up upload: {warm_answer['content_type']}, {warm_answer['width']}x{warm_answer['height']}, "
                  f"{warm_answer['size'] / 1e6:.2f} MB stored", flush=True)

            print(f"uploading {args.uploads} photos, {args.concurrency} at a time ...", flush=True)
            profiler = start_profiler(pid, args.profile) if args.profile else None
            try:
                result = run_uploads(app, maker, token, patient_id, args)
            finally:
                if profiler is not None:
                    stop_profiler(profiler)
            memory["end"] = memory_kib(pid)

            last = next((sample for sample in reversed(result.samples) if sample.status == 201), None)
            if last is not None:
                data, seconds = download(app.port, token, last.answer["id"])
                clean_copy = (check_download(data, last.answer), seconds, len(data))
    finally:
        # After the server stopped, so that errors while shutting down are seen too.
        print_log_problems(servers)
        for server in servers:
            print_log_exceptions(server)
        log_clean = bool(servers) and not any(log_problems(server.log_path) for server in servers)

    print_report(args, maker, result, memory)
    if args.profile:
        print_profile(args.profile)
    if clean_copy is None:
        print("\ndownloaded copy: no upload succeeded, nothing to check: FAIL")
        clean = False
    else:
        problems, seconds, size = clean_copy
        clean = not problems
        print(f"\ndownloaded copy of upload {last.number} ({size / 1e6:.2f} MB in {seconds * 1000:.0f} ms): "
              + ("no EXIF, no GPS, no camera maker, SHA-256 matches, upright 3000x4000: PASS" if clean
                 else "FAIL: " + "; ".join(problems)))
    check_target(result)
    return clean and log_clean and not result.errors and all(sample.status == 201 for sample in result.samples)


def main(argv=None):
    return run_bench("upload_bench", run, parse_args(argv),
                     interrupted="server stopped, bench database dropped, temporary files removed")

if __name__ == "__main__":
    sys.exit(main())
