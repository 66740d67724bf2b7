"""Liveness, readiness and metrics for load balancers and Prometheus."""

from pawmanity.extensions import api
from pawmanity.plugins import Plugin


def register(app):
    from blueprints.health.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="health", register=register)
