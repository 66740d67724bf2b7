"""Liveness, readiness and metrics for load balancers and Prometheus."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.health.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="health", register=register)
