"""Vital signs from people and devices: ingest, windows and downsampled series, devices, alert rules and alerts."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.vitals.routes import blp

    api.register_blueprint(blp)
    api.describe(lambda spec: spec.components.security_scheme(
        "deviceToken", {"type": "apiKey", "in": "header", "name": "X-Device-Token"}))


plugin = Plugin(name="vitals", register=register, requires=("auth", "patients"))
