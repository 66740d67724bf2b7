"""The call page: WebRTC in the browser, signalling through /video, the Socket.IO client from npm."""

from pathlib import Path

from flask import Blueprint, send_from_directory

from pawmanity.core.headers import serve_page

STATIC = Path(__file__).parent / "static"
page = Blueprint("video_page", __name__)


@page.route("/video")
def call_page():
    return serve_page(STATIC, "call.html", extra_policy="media-src 'self' blob: mediastream:")


@page.route("/video/assets/call.js")
def call_script():
    return send_from_directory(STATIC, "call.js")
