"""The browser chat page: plain HTML and JavaScript with the Socket.IO client installed from npm (no CDN)."""

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

from pawmanity.core.headers import serve_page

STATIC = Path(__file__).parent / "static"
page = Blueprint("chat_page", __name__)


@page.route("/chat")
def chat_page():
    return serve_page(STATIC, "chat.html", extra_policy="img-src 'self' data:")


@page.route("/chat/assets/<any('chat.js', 'chat.css', 'session.js'):name>")
def chat_asset(name):
    return send_from_directory(STATIC, name)


@page.route("/chat/assets/socket.io.min.js")
def socketio_client():
    dist = Path(current_app.config["NODE_MODULES_DIR"]) / "socket.io-client" / "dist"
    if not (dist / "socket.io.min.js").is_file():
        abort(404, "The Socket.IO client is not installed; run `npm install` (make run does it).")
    return send_from_directory(dist, "socket.io.min.js")
