"""Offline-first sync for mobile apps, in WatermelonDB's pull/push protocol shape."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.sync.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="sync", register=register, requires=("auth", "patients"))
