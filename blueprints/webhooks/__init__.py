"""Outbound webhooks (admins only): endpoints, their delivery log, and replay."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.webhooks.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="webhooks", register=register, requires=("auth",))
