"""Consultations: opening one from an appointment, live chat over Socket.IO and REST, ending it with a summary,
and a small browser chat page."""

from pawmanity.core.extensions import api
from pawmanity.core.live import register_namespace
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.consultations.events import ChatNamespace
    from blueprints.consultations.page import page
    from blueprints.consultations.routes import blp

    api.register_blueprint(blp)
    app.register_blueprint(page)
    register_namespace(app, ChatNamespace("/chat"))


plugin = Plugin(name="consultations", register=register, requires=("auth", "patients", "appointments"))
