"""The symptom checker: its knowledge base (symptoms and conditions per species); diagnoses come with its models."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.ai.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="ai", register=register, requires=("auth",))
