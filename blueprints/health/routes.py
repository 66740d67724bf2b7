from flask import current_app

from blueprints.health.schemas import HealthOut, ReadyOut
from pawmanity.api import API_PREFIX, Blueprint
from pawmanity.metrics import render_metrics
from pawmanity.services import readiness

blp = Blueprint("health", __name__, url_prefix=API_PREFIX, description="Liveness, readiness, metrics")


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthOut)
def health():
    """Liveness: the process answers."""
    return {"status": "ok"}


@blp.route("/ready", methods=["GET"])
@blp.response(200, ReadyOut)
@blp.alt_response(503, schema=ReadyOut, description="A dependency is down")
def ready():
    """Readiness: the database, the document store and (when configured) Redis answer."""
    checks = readiness.check_dependencies()
    ok = all(value == "ok" for value in checks.values())
    return {"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503


@blp.route("/metrics", methods=["GET"])
@blp.response(200, content_type="text/plain", description="Prometheus text exposition format")
def metrics():
    """Prometheus metrics."""
    return current_app.response_class(render_metrics(current_app),
                                      mimetype="text/plain; version=0.0.4; charset=utf-8")
