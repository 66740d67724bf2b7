"""PAWMANITY: telemedicine for people and animals. The application factory."""

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import CONFIGS, DEV_SECRET
from pawmanity import metadata  # noqa: F401  (every model registered before migrations look)
from pawmanity.appointments import booking
from pawmanity.care import patients
from pawmanity.cli import register_commands
from pawmanity.conversations import consultations
from pawmanity.core import ratelimits  # noqa: F401  (registers the limiter's request filter)
from pawmanity.core.api import require_json_bodies
from pawmanity.core.errors import register_error_handlers
from pawmanity.core.extensions import (
    api,
    celery_init_app,
    db,
    docstore,
    jwt,
    limiter,
    mail,
    migrate,
    redis_client,
    socketio,
)
from pawmanity.core.metrics import init_metrics
from pawmanity.core.plugins import load_plugins
from pawmanity.identity import accounts
from pawmanity.identity.security import register_jwt_callbacks
from pawmanity.identity.sockets import AuthenticatedNamespace
from pawmanity.media import uploads
from pawmanity.triage import diagnoses
from pawmanity.webhooks import events as webhook_events

ASYNC_MODES = ("gevent", "eventlet", "threading")


def create_app(config_name=None, *, plugins=None, settings=None):
    """Build the app. `plugins` overrides the PLUGINS list; `settings` overrides single config keys (tests)."""
    app = Flask(__name__)
    configure(app, config_name, settings)
    register_extensions(app)
    register_error_handlers(app)
    register_request_hooks(app)
    connect_domain_events()
    load_plugins(app, app.config["PLUGINS"] if plugins is None else plugins)
    register_commands(app)
    return app


def configure(app, config_name, settings):
    config_name = config_name or os.environ.get("PAWMANITY_CONFIG", "production")
    app.config.from_object(CONFIGS[config_name])
    app.config.update(settings or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite has one writer and no server; pool sizing applies to PostgreSQL only.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            key: value for key, value in app.config["SQLALCHEMY_ENGINE_OPTIONS"].items()
            if key not in ("pool_size", "max_overflow")
        }
    if app.config["REQUIRE_REAL_SECRETS"] and DEV_SECRET in (app.config["SECRET_KEY"], app.config["JWT_SECRET_KEY"]):
        raise RuntimeError("Set SECRET_KEY (and optionally JWT_SECRET_KEY) for production; tokens signed with the "
                           "development secret could be forged by anyone who has read this code")
    if app.config["ASYNC_MODE"] not in ASYNC_MODES:
        raise RuntimeError(f"PAWMANITY_ASYNC_MODE must be one of {ASYNC_MODES}")
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.logger.setLevel(logging.INFO)
    # The embedded default keeps its SQLite file, document store and outbox here.
    os.makedirs(app.config["INSTANCE_DIR"], exist_ok=True)


def register_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"),
                     render_as_batch=True, compare_type=True)
    jwt.init_app(app)
    register_jwt_callbacks()
    limiter.init_app(app)
    mail.init_app(app)
    docstore.init_app(app)
    redis_client.init_app(app)
    api.init_app(app)
    register_socketio(app)
    # Every Socket.IO connection, even to the default namespace, must present a valid access token.
    socketio.on_namespace(AuthenticatedNamespace("/"))
    celery_init_app(app)
    init_metrics(app)


def register_socketio(app):
    # Flask-SocketIO keeps options between init_app calls; a queue from an earlier app must not leak into this one.
    socketio.server_options.pop("client_manager", None)
    queue = app.config["SOCKETIO_MESSAGE_QUEUE"]
    if app.config.get("SOCKETIO_WRITE_ONLY") and queue:
        # A Celery worker serves no sockets: it only emits, through the message queue, to the servers' clients.
        socketio.init_app(None, message_queue=queue)
        return
    socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"],
        message_queue=queue,
        # None means same-origin only; an empty list would switch the origin check off.
        cors_allowed_origins=list(app.config["SOCKETIO_CORS_ORIGINS"]) or None,
        logger=False,
        engineio_logger=False,
    )


def connect_domain_events():
    """Where a lower domain's event must reach a higher one, the higher one subscribes here, in plain sight.

    blinker keeps one connection per receiver, so building several apps in one process does not repeat it.
    """
    accounts.user_registered.connect(patients.on_user_registered)
    booking.appointment_changed.connect(webhook_events.on_appointment_changed)
    consultations.consultation_changed.connect(webhook_events.on_consultation_changed)
    diagnoses.diagnosis_urgent.connect(webhook_events.on_diagnosis_urgent)
    uploads.upload_added.connect(webhook_events.on_upload_added)


def register_request_hooks(app):
    app.before_request(require_json_bodies)
