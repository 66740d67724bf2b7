"""What operators see: a request id on every request, one JSON access line per request, Prometheus metrics, and
an event-loop lag monitor.

The request id is taken from a well-formed `X-Request-ID` header (a proxy's) or made here; it is echoed in the
response header and in every problem body, so a user can quote it and an operator can find the line.

Under gevent one thread serves every request and socket of a worker; a step that holds it (CPU work that should
have been offloaded, a blocking call that is not patched) delays every chat message on the worker. The loop monitor
measures that in production: a greenlet that sleeps a fixed interval and records how late it wakes
(`pawmanity_event_loop_lag_seconds`), and a greenlet switch tracer that times each greenlet's turn on the loop and
logs any turn longer than LOOP_STALL_THRESHOLD_MS with the request or socket event it was serving, so the next
offender is named by the log, not found by a profile.
"""

import json
import logging
import re
import sys
import time
import uuid
import weakref
from collections import deque

from flask import g, has_request_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else a client sends is replaced: ids end up in logs, so no spaces, quotes or control characters.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
access_log = logging.getLogger("pawmanity.access")
loop_log = logging.getLogger("pawmanity.loop")
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def current_request_id():
    return g.get("request_id") if has_request_context() else None


def init_observability(app):
    _configure_access_log()
    registry = CollectorRegistry()
    requests = Counter("pawmanity_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
                       registry=registry)
    latency = Histogram("pawmanity_http_request_seconds", "HTTP request latency", ["method", "endpoint"],
                        registry=registry)
    app.extensions["metrics"] = registry
    monitor = LoopMonitor(app, registry)
    app.extensions["loop_monitor"] = monitor

    @app.before_request
    def start_request():
        g.request_started = time.perf_counter()
        g.pop("user_id", None)  # g outlives a request where an app context was already pushed (tests, CLI)
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if WELL_FORMED_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        monitor.start_once()
        monitor.note_activity(f"{request.method} {request.path} request_id={g.request_id}")

    @app.after_request
    def observe(response):
        started = g.pop("request_started", None)
        if started is None:
            return response
        duration = time.perf_counter() - started
        # The URL rule, not the path, so ids do not explode the label set.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        requests.labels(request.method, endpoint, str(response.status_code)).inc()
        latency.labels(request.method, endpoint).observe(duration)
        response.headers[REQUEST_ID_HEADER] = g.request_id
        user_id = g.get("user_id")
        # A URL that is itself a credential (a calendar feed's secret) is logged as its rule, never as sent.
        path = endpoint if request.view_args and "secret" in request.view_args else request.path
        access_log.info(json.dumps({
            "event": "request", "method": request.method, "path": path, "status": response.status_code,
            "duration_ms": round(duration * 1000, 2), "user_id": str(user_id) if user_id else None,
            "request_id": g.request_id,
        }))
        return response


def _configure_access_log():
    # One JSON object per line on stderr, whatever the server's own log format; configured once per process.
    if access_log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def render_metrics(app):
    return generate_latest(app.extensions["metrics"])


class LoopMonitor:
    """Event-loop lag and stall reporting for a gevent worker; does nothing elsewhere (threads need no monitor).

    Started on the first request, in the serving process (after any fork), with its own greenlet."""

    def __init__(self, app, registry):
        config = app.config
        self.interval = config["LOOP_MONITOR_INTERVAL_MS"] / 1000
        self.threshold = config["LOOP_STALL_THRESHOLD_MS"] / 1000
        self.enabled = config.get("ASYNC_MODE") == "gevent" and config["LOOP_MONITOR_INTERVAL_MS"] > 0
        self.lag = Histogram("pawmanity_event_loop_lag_seconds", "How late the loop monitor woke after its sleep",
                             buckets=LAG_BUCKETS, registry=registry)
        self.stalls = Counter("pawmanity_event_loop_stalls_total",
                              "Greenlet turns on the event loop longer than LOOP_STALL_THRESHOLD_MS", registry=registry)
        self.started = False
        self._activity = weakref.WeakKeyDictionary()  # greenlet -> what it is serving
        self._stalls = deque(maxlen=100)  # reported by the tracer, logged by the monitor greenlet

    def start_once(self):
        global _running_monitor
        if self.started or not self.enabled:
            return
        self.started = True
        from gevent import monkey

        if not monkey.is_module_patched("socket"):  # a gevent-mode app outside a gevent server (the CLI, tests)
            return
        import gevent
        import greenlet

        hub = gevent.get_hub()
        turn_started = [time.perf_counter(), time.thread_time()]
        previous_tracer = None

        def trace(event, args):
            # Runs on every switch of the loop's thread: keep it to a clock read and a comparison. Logging here
            # could itself switch greenlets, so stalls are only queued.
            if event in ("switch", "throw"):
                origin = args[0]
                now, cpu_now = time.perf_counter(), time.thread_time()
                turn, cpu = now - turn_started[0], cpu_now - turn_started[1]
                turn_started[0], turn_started[1] = now, cpu_now
                if turn > self.threshold and origin is not hub:
                    self._stalls.append((turn, cpu, self._activity.get(origin) or _describe(origin)))
            if previous_tracer is not None:
                previous_tracer(event, args)

        previous_tracer = greenlet.settrace(trace)
        gevent.spawn(self._watch)
        _running_monitor = self

    def note_activity(self, label):
        """Name what the current greenlet is serving, for the stall log."""
        if self.started:
            import gevent

            self._activity[gevent.getcurrent()] = label

    def _watch(self):
        import gevent

        while True:
            asleep = time.perf_counter()
            gevent.sleep(self.interval)
            late = max(0.0, time.perf_counter() - asleep - self.interval)
            self.lag.observe(late)
            while self._stalls:
                turn, cpu, activity = self._stalls.popleft()
                self.stalls.inc()
                # cpu_ms well below held_ms: the loop's thread was waiting for a core, not running this code.
                loop_log.warning(json.dumps({"event": "loop_stall", "held_ms": round(turn * 1000, 1),
                                             "cpu_ms": round(cpu * 1000, 1), "threshold_ms": round(self.threshold * 1000),
                                             "activity": activity}))


def _describe(greenlet):
    run = getattr(greenlet, "_run", None) or getattr(greenlet, "run", None)
    return getattr(run, "__qualname__", None) or type(greenlet).__name__


_running_monitor = None  # one loop per process, so one monitor


def note_activity(label):
    """Name what the current greenlet is serving (a Socket.IO event, a background job) for the loop's stall log."""
    if _running_monitor is not None:
        _running_monitor.note_activity(label)
