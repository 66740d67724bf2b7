from flask import Blueprint, current_app, render_template

from pawmanity import demo
from pawmanity.core.headers import BASE_POLICY

page = Blueprint("home", __name__, template_folder="templates")


@page.route("/")
def index():
    plugins = current_app.extensions["pawmanity.plugins"]
    # Demo accounts share a published password: they are listed only outside production.
    show_demo = not current_app.config["REQUIRE_REAL_SECRETS"]
    html = render_template(
        "home.html",
        has_chat="consultations" in plugins,
        has_video="video_sessions" in plugins,
        has_privacy="privacy" in plugins,
        demo_accounts=demo.loaded_accounts() if show_demo else [],
        demo_password=demo.DEMO_PASSWORD,
    )
    response = current_app.response_class(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = BASE_POLICY + "; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
