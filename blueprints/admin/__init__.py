"""Administration: accounts, roles, activation and the audit trail."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.admin.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="admin", register=register, requires=("auth",))
