"""Prometheus metrics: request counts and latency per endpoint, one registry per app."""

import time

from flask import g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


def init_metrics(app):
    registry = CollectorRegistry()
    requests = Counter("pawmanity_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
                       registry=registry)
    latency = Histogram("pawmanity_http_request_seconds", "HTTP request latency", ["method", "endpoint"],
                        registry=registry)
    app.extensions["metrics"] = registry

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response):
        started = g.pop("request_started", None)
        if started is not None:
            # The URL rule, not the path, so ids do not explode the label set.
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            requests.labels(request.method, endpoint, str(response.status_code)).inc()
            latency.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response


def render_metrics(app):
    return generate_latest(app.extensions["metrics"])
