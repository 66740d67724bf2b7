"""A lean Socket.IO client for measuring latency through a server's event loop: one thread, one blocking WebSocket,
no background reader or writer threads.

python-socketio's Client is the wrong instrument for a few milliseconds: each `call` hands its packet to a writer
thread through a queue, a reader thread receives the answer and wakes the caller through an Event, so one round
trip waits for the GIL and a core three times in the client. Here one thread sends a frame and blocks in recv() on
the socket: the round trip is the server's turn plus one wake-up of this process.

Speaks just enough Engine.IO 4 / Socket.IO 5 text framing for connect, emit, acknowledgements, events and the
server's keep-alive pings. Used by tests/test_event_loop.py and bench/loop_bench.py, each probe in a process of its
own (`run_in_process`), so that nothing else in that process takes the GIL or the core from it.
"""

import json
import multiprocessing
import re
import time
from contextlib import contextmanager

import requests
import websocket


class LeanSocket:
    def __init__(self, base_url, namespace, auth, timeout=10):
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.namespace, self.timeout = namespace, timeout
        self.ws = websocket.create_connection(url, timeout=timeout, enable_multithread=False)
        self.ws.sock.setsockopt(6, 1, 1)  # TCP_NODELAY: a small frame leaves at once
        opened = self.ws.recv()
        if not opened.startswith("0"):
            raise ConnectionError(f"unexpected Engine.IO open packet {opened!r}")
        self.ws.send(f"40{namespace},{json.dumps(auth)}")
        connected = self._next_packet()
        if not connected.startswith(f"0{namespace},"):  # CONNECT; 4 is CONNECT_ERROR
            raise ConnectionError(f"{namespace} refused the connection: {connected!r}")
        self.events, self._ack_id = [], 0  # events: (name, arguments, perf_counter at receipt)

    def _next_packet(self):
        """The next Socket.IO packet; answers the server's keep-alive pings on the way."""
        while True:
            packet = self._frame()
            if packet is not None:
                return packet

    def _frame(self):
        """One Engine.IO frame: a Socket.IO packet (returned), or a keep-alive ping (answered; None returned)."""
        frame = self.ws.recv()
        if frame == "2":
            self.ws.send("3")
            return None
        if not frame.startswith("4"):
            raise ConnectionError(f"unexpected Engine.IO packet {frame!r}")
        return frame[1:]

    def _parse(self, packet):
        kind, rest = packet[0], packet[1:]
        if rest.startswith(self.namespace + ","):
            rest = rest[len(self.namespace) + 1:]
        digits = len(rest) - len(rest.lstrip("0123456789"))
        ack_id = int(rest[:digits]) if digits else None
        return kind, ack_id, json.loads(rest[digits:]) if rest[digits:] else None

    def emit(self, event, data):
        self.ws.send(f"42{self.namespace},{json.dumps([event, data])}")

    def call(self, event, data):
        """Emit with an acknowledgement and wait for it; events arriving meanwhile are kept in `events`."""
        self._ack_id += 1
        self.ws.send(f"42{self.namespace},{self._ack_id}{json.dumps([event, data])}")
        while True:
            answer = self.receive()
            if answer is not None:
                return answer

    def receive(self):
        """One frame: an acknowledgement's arguments (returned); an event (kept in `events`) or a keep-alive ping
        (answered): None returned. So it blocks no longer than for the frame select() saw arrive."""
        packet = self._frame()
        if packet is None:
            return None
        kind, ack_id, payload = self._parse(packet)
        if kind == "3" and ack_id == self._ack_id:
            return payload[0] if payload else None
        if kind == "2":
            self.events.append((payload[0], payload[1:], time.perf_counter()))
            return None
        if kind == "3":
            return None  # a late acknowledgement of an earlier call
        raise ConnectionError(f"unexpected Socket.IO packet {kind}{payload!r}")

    def close(self):
        try:
            self.ws.send(f"41{self.namespace},")
        finally:
            self.ws.close()


def ping_every(base_url, token, interval, ready, stop, results):
    """Ping /notifications every `interval` s until `stop` is set; put (round trips, wake-up lateness) in `results`.

    The lateness of this process's own sleeps is kept too: it is the client's share of any round trip (the kernel
    waking this process late), measured where the server cannot add to it."""
    socket = LeanSocket(base_url, "/notifications", {"token": token})
    round_trips, late = [], []
    sequence = 0
    try:
        socket.call("ping", 0)  # the first round trip warms both ends; it is not measured
        ready.set()
        while not stop.is_set():
            sequence += 1
            sent = time.perf_counter()
            answer = socket.call("ping", sequence)
            round_trips.append(time.perf_counter() - sent)
            if answer != {"pong": sequence}:
                raise AssertionError(f"ping {sequence} answered {answer!r}")
            asleep = time.perf_counter()
            time.sleep(interval)
            late.append(time.perf_counter() - asleep - interval)
    finally:
        socket.close()
        results.put((round_trips, late))


@contextmanager
def pinging(base_url, token, interval=0.010, target=ping_every):
    """Ping from a process of its own; yields a dict that holds, once the block ends, "round_trips" and "late"
    (seconds)."""
    with run_in_process(target, (base_url, token, interval), ("round_trips", "late"), "pinger") as figures:
        yield figures


@contextmanager
def run_in_process(target, args, names, what, failure=RuntimeError):
    """Run `target(*args, ready, stop, results)` in a process of its own (spawned: no copy of the caller's threads
    or heap) for the block, which starts once the target set `ready`, so it measures the probe at work, not its
    start. Yields a dict that holds, once the block ends, `names` paired with the tuple the target put in
    `results` after `stop` was set."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=target, args=(*args, ready, stop, results), daemon=True)
    process.start()
    while not ready.wait(0.05):
        if not process.is_alive():
            raise failure(f"the {what} process exited ({process.exitcode}) before it was ready")
    figures = {}
    try:
        yield figures
    finally:
        stop.set()
        values = results.get(timeout=60)
        process.join(timeout=30)
        figures.update(zip(names, values))


def loop_metrics(base_url, token):
    """The worker's loop monitor as /api/v1/metrics shows it: ({bucket bound: wake-ups at most that late}, wake-ups,
    stalls logged)."""
    text = requests.get(f"{base_url}/api/v1/metrics", timeout=10, headers={"Authorization": f"Bearer {token}"}).text
    buckets = {float(le): float(count) for le, count in
               re.findall(r'pawmanity_event_loop_lag_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+]+)', text)}
    stalls = float(re.search(r"^pawmanity_event_loop_stalls_total ([0-9.e+]+)$", text, re.M).group(1))
    total = float(re.search(r"^pawmanity_event_loop_lag_seconds_count ([0-9.e+]+)$", text, re.M).group(1))
    return buckets, total, stalls
