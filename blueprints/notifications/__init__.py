"""In-app notifications (listed, marked read, pushed live on /notifications), per-channel preferences, and Web Push
subscriptions with the browser script and service worker that make them."""

from pawmanity.core.extensions import api, socketio
from pawmanity.core.plugins import Plugin
from pawmanity.identity.sockets import AuthenticatedNamespace


def register(app):
    from blueprints.notifications.page import page
    from blueprints.notifications.routes import blp

    api.register_blueprint(blp)
    app.register_blueprint(page)
    # Connecting is all a client does here: it joins its own user room and receives `notification` events.
    socketio.on_namespace(AuthenticatedNamespace("/notifications"))


plugin = Plugin(name="notifications", register=register, requires=("auth",))
