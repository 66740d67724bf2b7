"""A third-party plugin: one route, requiring the auth plugin."""

from pawmanity.api import Blueprint
from pawmanity.extensions import api
from pawmanity.plugins import Plugin

blp = Blueprint("greeting", __name__, url_prefix="/api/v1/greeting")


@blp.route("/")
def hello():
    return {"hello": "clinic"}


def register(app):
    api.register_blueprint(blp)


plugin = Plugin(name="greeting", register=register, requires=("auth",))
