import hmac

from flask import current_app, request

from blueprints.health.schemas import HealthOut, ReadyOut
from pawmanity.core import readiness
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.errors import NotFound, ServiceUnavailable, Unauthorized
from pawmanity.core.observability import render_metrics

blp = Blueprint("health", __name__, url_prefix=API_PREFIX, description="Liveness, readiness, metrics")


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthOut)
def health():
    """Liveness: the process answers."""
    return {"status": "ok"}


@blp.route("/ready", methods=["GET"])
@blp.response(200, ReadyOut)
@blp.errors(503)
def ready():
    """Readiness: the database, the document store and (when configured) Redis answer.

    When one does not, the answer is a 503 problem whose `checks` member says which.
    """
    checks = readiness.check_dependencies()
    if any(state != "ok" for state in checks.values()):
        raise ServiceUnavailable("A dependency is unavailable.", code="not_ready", extra={"checks": checks})
    return {"status": "ready", "checks": checks}


@blp.route("/metrics", methods=["GET"])
@blp.response(200, content_type="text/plain", description="Prometheus text exposition format")
@blp.errors(401, 404)
def metrics():
    """Prometheus metrics, for a scraper sending `Authorization: Bearer <PAWMANITY_METRICS_TOKEN>` (a deployment
    secret, not a user's access token); without that setting production does not serve them."""
    _check_metrics_token()
    return current_app.response_class(render_metrics(current_app),
                                      mimetype="text/plain; version=0.0.4; charset=utf-8")


def _check_metrics_token():
    token = current_app.config["METRICS_TOKEN"]
    if token is None:
        if current_app.config["METRICS_OPEN_WITHOUT_TOKEN"]:
            return
        raise NotFound("Metrics are not served here; set PAWMANITY_METRICS_TOKEN to enable them.")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("Send the metrics token as a bearer token.", code="metrics_token_required",
                           headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
