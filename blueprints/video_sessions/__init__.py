"""Video sessions: join tokens, ICE servers, WebRTC signalling on /video, and a small call page."""

from pawmanity.core.extensions import api
from pawmanity.core.live import register_namespace
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.video_sessions.events import VideoNamespace
    from blueprints.video_sessions.page import page
    from blueprints.video_sessions.routes import blp

    api.register_blueprint(blp)
    app.register_blueprint(page)
    register_namespace(app, VideoNamespace("/video"))


plugin = Plugin(name="video_sessions", register=register, requires=("auth", "appointments"))
