"""In-app notifications (listed, marked read, pushed live on /notifications), per-channel preferences, and Web Push
subscriptions with the browser script and service worker that make them."""

from pawmanity.core.extensions import api
from pawmanity.core.live import register_namespace
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.notifications.events import NotificationsNamespace
    from blueprints.notifications.page import page
    from blueprints.notifications.routes import blp

    api.register_blueprint(blp)
    app.register_blueprint(page)
    register_namespace(app, NotificationsNamespace("/notifications"))


plugin = Plugin(name="notifications", register=register, requires=("auth",))
