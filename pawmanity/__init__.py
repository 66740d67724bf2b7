"""PAWMANITY: telemedicine for people and animals. The application factory."""

import logging
import os
import uuid

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import CONFIGS, DEV_SECRET
from pawmanity import metadata  # noqa: F401  (every model registered before migrations look)
from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care import patients
from pawmanity.cli import register_commands
from pawmanity.conversations import consultations
from pawmanity.core import (
    errors,
    ratelimits,  # noqa: F401  (registers the limiter's request filter)
)
from pawmanity.core.api import BoundedJSONRequest, locate_created, require_json_bodies
from pawmanity.core.database import FairQueuePool
from pawmanity.core.encryption import fields as field_encryption
from pawmanity.core.errors import ProblemOnEscape, register_error_handlers
from pawmanity.core.extensions import (
    api,
    celery_init_app,
    cors,
    db,
    docstore,
    jwt,
    limiter,
    mail,
    migrate,
    redis_client,
    socketio,
)
from pawmanity.core.headers import register_security_headers
from pawmanity.core.live import register_namespace, serve_asyncapi
from pawmanity.core.observability import init_observability
from pawmanity.core.plugins import load_plugins
from pawmanity.identity import accounts
from pawmanity.identity.security import register_jwt_callbacks
from pawmanity.identity.sockets import AuthenticatedNamespace
from pawmanity.media import uploads
from pawmanity.pharmacy import prescriptions
from pawmanity.scheduling import doctors
from pawmanity.triage import diagnoses
from pawmanity.vitals import alerts as vital_alerts
from pawmanity.vitals import readings as vital_readings
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
            if key not in ("pool_size", "max_overflow", "pool_timeout")
        }
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        connect_args = dict(options.get("connect_args", {}))
        connect_args.setdefault("connect_timeout", app.config["DB_CONNECT_TIMEOUT_SECONDS"])
        connect_args.setdefault("options", f"-c statement_timeout={app.config['DB_STATEMENT_TIMEOUT_MS']}")
        options["connect_args"] = connect_args
        options.setdefault("poolclass", FairQueuePool)  # waiters for a connection served in arrival order
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    check_secrets(app.config)
    check_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        field_encryption.init_app(app)
    except field_encryption.FieldKeysMissing as error:
        raise ConfigurationError(str(error)) from None
    if app.config["ASYNC_MODE"] not in ASYNC_MODES:
        raise ConfigurationError(f"PAWMANITY_ASYNC_MODE must be one of {ASYNC_MODES}")
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.logger.setLevel(logging.INFO)
    app.wsgi_app = ProblemOnEscape(app.wsgi_app, app.config["DEPENDENCY_RETRY_AFTER_SECONDS"])
    # The embedded default keeps its SQLite file, document store and outbox here.
    os.makedirs(app.config["INSTANCE_DIR"], exist_ok=True)


class ConfigurationError(RuntimeError):
    """A setting the service cannot start with; wsgi.py and the CLI print it as one line."""


MIN_SECRET_BYTES = 32  # HS256 needs a key at least as long as its hash (RFC 7518 section 3.2)
DATABASE_SCHEMES = ("postgresql", "sqlite")


def check_secrets(config):
    if not config["REQUIRE_REAL_SECRETS"]:
        return
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        secret = config[name] or ""
        if secret == DEV_SECRET:
            raise ConfigurationError(f"Set {name} for production: tokens signed with the development secret could "
                                     "be forged by anyone who has read this code")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"{name} must be at least {MIN_SECRET_BYTES} bytes long (e.g. the output of "
                                     "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")


def check_database_url(url):
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in DATABASE_SCHEMES:
        raise ConfigurationError(f"DATABASE_URL must be a PostgreSQL (postgresql://...) or SQLite URL, not {scheme}://")


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
    register_cors(app)
    register_socketio(app)
    # Every Socket.IO connection, even to the default namespace, must present a valid access token.
    register_namespace(app, AuthenticatedNamespace("/"))
    serve_asyncapi(app)
    celery_init_app(app)
    init_observability(app)


def register_cors(app):
    # Browser front ends on other origins: the same allow-list as Socket.IO's; none configured = same origin only.
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": list(app.config["SOCKETIO_CORS_ORIGINS"])}},
        allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID", "X-RateLimit-Limit",
                        "X-RateLimit-Remaining", "X-RateLimit-Reset"],
        max_age=600,
    )


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
    errors.access_denied.connect(trail.record_denial)
    accounts.user_registered.connect(patients.on_user_registered)
    accounts.user_renamed.connect(doctors.on_user_renamed)
    consultations.consultation_ended.connect(prescriptions.on_consultation_ended)
    booking.appointment_changed.connect(webhook_events.on_appointment_changed)
    consultations.consultation_changed.connect(webhook_events.on_consultation_changed)
    diagnoses.diagnosis_urgent.connect(webhook_events.on_diagnosis_urgent)
    uploads.upload_added.connect(webhook_events.on_upload_added)
    vital_alerts.alert_changed.connect(webhook_events.on_vitals_alert_changed)
    patients.weight_recorded.connect(vital_readings.on_weight_recorded)


def register_request_hooks(app):
    app.request_class = BoundedJSONRequest
    app.before_request(require_json_bodies)
    app.after_request(locate_created)
    register_security_headers(app)


def warm_up(app):
    """Do once, at a server worker's start, what the first requests would otherwise do while holding the event loop:
    read the common-password list, load the e-mail normaliser's tables, open the cipher with the field keys."""
    from pawmanity.core.encryption import fields
    from pawmanity.identity import email_addresses, passwords

    with app.app_context():
        passwords.common_passwords()
        email_addresses.email_skeleton(email_addresses.normalize_email("warm.up@example.com"))
        row_id = uuid.uuid4()
        sealed = fields.encrypt_value("warm up", table="warm_up", column="value", row_id=row_id)
        fields.decrypt_value(sealed, table="warm_up", column="value", row_id=row_id)
        fields.blind_index("warm_up", "value", "warm up")
