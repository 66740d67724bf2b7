"""A third-party plugin: one route, requiring the auth plugin."""

from pawmanity.core.api import Blueprint
from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin

blp = Blueprint("greeting", __name__, url_prefix="/api/v1/greeting")


@blp.route("/")
def hello():
    return {"hello": "clinic"}


def register(app):
    api.register_blueprint(blp)


plugin = Plugin(name="greeting", register=register, requires=("auth",))
