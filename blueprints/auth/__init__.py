"""Registration, sign-in, token refresh and rotation, sign-out, and the caller's own account."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.auth.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="auth", register=register)
