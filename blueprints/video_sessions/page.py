"""The call page: WebRTC in the browser, signalling through /video, the Socket.IO client from npm."""

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).parent / "static"
page = Blueprint("video_page", __name__)


@page.route("/video")
def call_page():
    response = send_from_directory(STATIC, "call.html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; style-src 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@page.route("/video/assets/call.js")
def call_script():
    return send_from_directory(STATIC, "call.js")
