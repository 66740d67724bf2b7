"""The browser side of Web Push: the script pages include to offer a subscription, and its service worker."""

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).parent / "static"
page = Blueprint("push_page", __name__)


@page.route("/push/<any('push.js', 'sw.js'):name>")
def push_asset(name):
    response = send_from_directory(STATIC, name, mimetype="text/javascript")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if name == "sw.js":
        response.headers["Cache-Control"] = "no-cache"  # browsers check a service worker for updates
    return response
