"""In-app notifications (listed, marked read, pushed live on /notifications) and per-channel preferences."""

from pawmanity.core.extensions import api
from pawmanity.core.live import register_namespace
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.notifications.events import NotificationsNamespace
    from blueprints.notifications.routes import blp

    api.register_blueprint(blp)
    register_namespace(app, NotificationsNamespace("/notifications"))


plugin = Plugin(name="notifications", register=register, requires=("auth",))
