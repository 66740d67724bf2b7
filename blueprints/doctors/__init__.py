"""Doctor profiles, the public directory, availability, time off and free slots."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.doctors.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="doctors", register=register, requires=("auth",))
