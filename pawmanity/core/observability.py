"""What operators see: a request id on every request, one JSON access line per request, Prometheus metrics.

The request id is taken from a well-formed `X-Request-ID` header (a proxy's) or made here; it is echoed in the
response header and in every problem body, so a user can quote it and an operator can find the line.
"""

import json
import logging
import re
import sys
import time
import uuid

from flask import g, has_request_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else a client sends is replaced: ids end up in logs, so no spaces, quotes or control characters.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
access_log = logging.getLogger("pawmanity.access")


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

    @app.before_request
    def start_request():
        g.request_started = time.perf_counter()
        g.pop("user_id", None)  # g outlives a request where an app context was already pushed (tests, CLI)
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if WELL_FORMED_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex

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
