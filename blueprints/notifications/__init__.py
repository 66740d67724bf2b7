"""In-app notifications (listed, marked read, pushed live on /notifications) and per-channel preferences."""

from pawmanity.core.extensions import api, socketio
from pawmanity.core.plugins import Plugin
from pawmanity.identity.sockets import AuthenticatedNamespace


def register(app):
    from blueprints.notifications.routes import blp

    api.register_blueprint(blp)
    # Connecting is all a client does here: it joins its own user room and receives `notification` events.
    socketio.on_namespace(AuthenticatedNamespace("/notifications"))


plugin = Plugin(name="notifications", register=register, requires=("auth",))
