"""PAWMANITY settings.

Every production setting comes from the environment (DATABASE_URL, MONGO_URI, REDIS_URL, SMTP_*); with none of them
set the service runs on its embedded defaults: a SQLite file, an on-disk document store, in-process Socket.IO and
Celery, and mail written to a local outbox folder.
"""

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_PATH = Path(os.environ.get("PAWMANITY_INSTANCE_DIR", BASE_DIR / "instance"))

# Plugins load in this order; a third-party plugin joins by naming its dotted path.
DEFAULT_PLUGINS = (
    "blueprints.home",
    "blueprints.health",
    "blueprints.auth",
    "blueprints.admin",
    "blueprints.patients",
    "blueprints.doctors",
    "blueprints.appointments",
    "blueprints.consultations",
    "blueprints.notifications",
    "blueprints.uploads",
    "blueprints.video_sessions",
    "blueprints.ai",
    "blueprints.pharmacy",
    "blueprints.vitals",
    "blueprints.fhir",
    "blueprints.webhooks",
    "blueprints.privacy",
    "blueprints.sync",
)


# Long enough for HS256 (PyJWT warns below 32 bytes), and refused by the production configuration.
DEV_SECRET = "dev-only-secret-change-me-it-is-public-and-production-refuses-it"


def _env_list(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return tuple(default)
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _env_int(name, default):
    raw = os.environ.get(name)
    return int(raw) if raw else default


def database_url():
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{INSTANCE_PATH / 'pawmanity.sqlite3'}"
    # Heroku-style and bare postgres:// URLs mean psycopg 3 here.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET)
    REQUIRE_REAL_SECRETS = False
    INSTANCE_DIR = str(INSTANCE_PATH)
    PLUGINS = _env_list("PAWMANITY_PLUGINS", DEFAULT_PLUGINS)
    ASYNC_MODE = os.environ.get("PAWMANITY_ASYNC_MODE", "gevent")
    TRUSTED_PROXIES = _env_int("PAWMANITY_TRUSTED_PROXIES", 0)
    # Field-level encryption of identifiers (pawmanity/core/encryption/fields.py): keys from the environment or a key
    # file, never the database. Without either, development and tests generate instance/field-keys.json once;
    # production refuses to start.
    FIELD_KEYS = os.environ.get("PAWMANITY_FIELD_KEYS")
    BLIND_INDEX_KEY = os.environ.get("PAWMANITY_BLIND_INDEX_KEY")
    FIELD_KEY_FILE = os.environ.get("PAWMANITY_FIELD_KEY_FILE")
    GENERATE_FIELD_KEYS = True

    # Relational data
    SQLALCHEMY_DATABASE_URI = database_url()
    # Pre-ping on checkout: after a database restart every pooled connection is dead, and without it the first
    # request on each one fails (1-4 per restart were seen). Measured at 0.21 ms per checkout on a local
    # PostgreSQL (bench/pool_pre_ping_cost.py), small against a request's own queries.
    SQLALCHEMY_ENGINE_OPTIONS = {
        # Bound parameters can be medical (a booking's reason); they stay out of logs and error messages.
        "hide_parameters": True,
        "pool_pre_ping": os.environ.get("PAWMANITY_DB_PRE_PING", "true").lower() == "true",
        "pool_recycle": 1800,
        # No overflow. QueuePool closes an overflow connection as soon as it is returned, so in a burst the worker
        # opened and closed a PostgreSQL backend per event; that made every event slower, more of them piled up, and
        # more overflow was opened: chat_bench (200 clients) caught the worker in such spells, 40-70 messages in
        # hand at once, each taking 200 ms. Twenty kept connections, then a first-come-first-served wait
        # (FairQueuePool) for a free one. Delivery p99 of chat_bench's lean probe: 10 kept + 20 overflow, 344 ms
        # (the crowd's, before the probe); 20 + 10, 90-185 ms over three runs; 30 + 0, 96-133 ms; 20 + 0, 62-96 ms
        # over four. booking_bench (50 clients) at 20 + 0: the same throughput, no 5xx.
        "pool_size": _env_int("PAWMANITY_DB_POOL_SIZE", 20),
        "max_overflow": _env_int("PAWMANITY_DB_POOL_OVERFLOW", 0),
        # A request waits this long for a free connection, then gets 503 database_busy instead of hanging.
        "pool_timeout": _env_int("PAWMANITY_DB_POOL_TIMEOUT_SECONDS", 5),
    }
    # PostgreSQL only: a stalled server or a runaway query fails the request (503) instead of hanging it.
    DB_CONNECT_TIMEOUT_SECONDS = _env_int("PAWMANITY_DB_CONNECT_TIMEOUT_SECONDS", 5)
    DB_STATEMENT_TIMEOUT_MS = _env_int("PAWMANITY_DB_STATEMENT_TIMEOUT_MS", 30_000)
    # Retry-After on a 503/507 caused by a dependency (database, Redis, disk).
    DEPENDENCY_RETRY_AFTER_SECONDS = _env_int("PAWMANITY_DEPENDENCY_RETRY_AFTER_SECONDS", 5)
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # Document store: mongodb:// -> pymongo; unset -> embedded on-disk store
    MONGO_URI = os.environ.get("MONGO_URI") or f"montydb://{INSTANCE_PATH / 'docstore'}"
    MONGO_DB_NAME = os.environ.get("MONGO_DB_NAME", "pawmanity")
    # After a failure the store is skipped this long (diagnosis logs wait in the outbox) before one caller retries.
    DOCSTORE_BREAKER_SECONDS = _env_int("PAWMANITY_DOCSTORE_BREAKER_SECONDS", 30)

    # Redis: Socket.IO message queue, token blocklist, rate-limit storage, Celery broker
    REDIS_URL = os.environ.get("REDIS_URL") or None
    REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "pawmanity:")
    SOCKETIO_MESSAGE_QUEUE = REDIS_URL
    SOCKETIO_CORS_ORIGINS = _env_list("PAWMANITY_CORS_ORIGINS", ())

    # Tokens. The algorithm is pinned for both signing and verifying.
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY") or SECRET_KEY
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=_env_int("PAWMANITY_REFRESH_DAYS", 30))
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_ERROR_MESSAGE_KEY = "detail"

    # Passwords: argon2id at or above OWASP's minimum (m=19 MiB, t=2, p=1)
    ARGON2_MEMORY_KIB = _env_int("PAWMANITY_ARGON2_MEMORY_KIB", 19 * 1024)
    ARGON2_TIME_COST = _env_int("PAWMANITY_ARGON2_TIME_COST", 2)
    ARGON2_PARALLELISM = 1

    # Rate limits (Flask-Limiter); storage follows REDIS_URL
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_KEY_PREFIX = "pawmanity"
    # Redis down must not make requests fail: counters move to this process's memory and Redis is tried again
    # (Flask-Limiter backs off on its own; pawmanity.core.ratelimits after RATELIMIT_STORAGE_RETRY_SECONDS).
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}  # as the other Redis clients
    RATELIMIT_STORAGE_RETRY_SECONDS = _env_int("PAWMANITY_RATELIMIT_STORAGE_RETRY_SECONDS", 15)
    # Per client address (anonymous endpoints)
    LOGIN_RATE_LIMIT = os.environ.get("PAWMANITY_LOGIN_RATE_LIMIT", "10 per minute")
    REGISTER_RATE_LIMIT = os.environ.get("PAWMANITY_REGISTER_RATE_LIMIT", "10 per hour")
    # Per account
    PASSWORD_CHECK_RATE_LIMIT = os.environ.get("PAWMANITY_PASSWORD_CHECK_RATE_LIMIT", "5 per 15 minutes")
    DIAGNOSIS_RATE_LIMIT = os.environ.get("PAWMANITY_DIAGNOSIS_RATE_LIMIT", "30 per hour")
    UPLOAD_RATE_LIMIT = os.environ.get("PAWMANITY_UPLOAD_RATE_LIMIT", "60 per hour")
    UPLOAD_BYTES_RATE_LIMIT = os.environ.get("PAWMANITY_UPLOAD_BYTES_RATE_LIMIT", f"{500 * 1024 * 1024} per hour")
    INVITATION_RATE_LIMIT = os.environ.get("PAWMANITY_INVITATION_RATE_LIMIT", "20 per day")
    TYPING_RATE_LIMIT = os.environ.get("PAWMANITY_TYPING_RATE_LIMIT", "10 per 10 seconds")

    # Request bodies: JSON endpoints are small; upload endpoints raise their own limit.
    MAX_CONTENT_LENGTH = _env_int("PAWMANITY_MAX_JSON_BYTES", 1024 * 1024)

    # Mail: SMTP when MAIL_SERVER is set, otherwise files in a local outbox folder
    MAIL_SERVER = os.environ.get("SMTP_HOST") or os.environ.get("MAIL_SERVER")
    MAIL_PORT = _env_int("SMTP_PORT", 587)
    MAIL_USERNAME = os.environ.get("SMTP_USERNAME")
    MAIL_PASSWORD = os.environ.get("SMTP_PASSWORD")
    MAIL_USE_TLS = os.environ.get("SMTP_STARTTLS", "true").lower() == "true"
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "PAWMANITY <no-reply@pawmanity.local>")
    MAIL_OUTBOX_DIR = str(INSTANCE_PATH / "outbox")

    # Celery: eager (in-process) unless a broker is configured
    CELERY = {
        "broker_url": REDIS_URL or "memory://",
        "result_backend": None,
        "task_always_eager": REDIS_URL is None,
        "task_ignore_result": True,
        # Each domain keeps its tasks in its own tasks.py; the worker imports these at start.
        "include": [
            "pawmanity.core.encryption.tasks", "pawmanity.identity.tasks", "pawmanity.notifications.tasks",
            "pawmanity.appointments.tasks", "pawmanity.conversations.tasks", "pawmanity.triage.tasks",
            "pawmanity.pharmacy.tasks", "pawmanity.webhooks.tasks", "pawmanity.privacy.tasks",
            "pawmanity.sync.tasks", "pawmanity.audit.tasks",
        ],
        "beat_schedule": {
            "purge-expired-tokens": {"task": "pawmanity.identity.tasks.purge_expired_tokens", "schedule": 3600.0},
            "send-due-reminders": {"task": "pawmanity.appointments.tasks.send_due_reminders", "schedule": 60.0},
            "send-message-digests": {"task": "pawmanity.conversations.tasks.send_message_digests", "schedule": 120.0},
            "end-expired-video-sessions": {"task": "pawmanity.conversations.tasks.end_expired_video_sessions",
                                           "schedule": 60.0},
            "drain-diagnosis-outbox": {"task": "pawmanity.triage.tasks.drain_diagnosis_outbox", "schedule": 60.0},
            "deliver-due-webhooks": {"task": "pawmanity.webhooks.tasks.deliver_due_webhooks", "schedule": 15.0},
            "retrain-symptom-checker": {"task": "pawmanity.triage.tasks.retrain_symptom_checker",
                                        "schedule": 7 * 24 * 3600.0},
            "release-expired-pharmacy-reservations": {
                "task": "pawmanity.pharmacy.tasks.release_expired_reservations", "schedule": 60.0},
            "expire-pharmacy-lots": {"task": "pawmanity.pharmacy.tasks.expire_lots", "schedule": 3600.0},
            "expire-data-exports": {"task": "pawmanity.privacy.tasks.expire_exports", "schedule": 900.0},
            "purge-restricted-records": {"task": "pawmanity.privacy.tasks.purge_restricted_records",
                                         "schedule": 24 * 3600.0},
            "purge-sync-tombstones": {"task": "pawmanity.sync.tasks.purge_tombstones", "schedule": 3600.0},
            "chain-audit-events": {"task": "pawmanity.audit.tasks.chain_audit_events", "schedule": 60.0},
        },
    }

    # OpenAPI document and Swagger UI; PUBLIC_URL is the base URL clients are told to use
    PUBLIC_URL = os.environ.get("PAWMANITY_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    API_TITLE = "PAWMANITY"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "v1/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"
    # Swagger UI would send the whole API description to validator.swagger.io for a badge; it stays here.
    OPENAPI_SWAGGER_UI_CONFIG = {"validatorUrl": None}
    # /metrics answers only `Authorization: Bearer <this>`; unset, it is not served at all (404) in production.
    METRICS_TOKEN = os.environ.get("PAWMANITY_METRICS_TOKEN") or None
    METRICS_OPEN_WITHOUT_TOKEN = False

    UPLOAD_DIR = os.environ.get("PAWMANITY_UPLOAD_DIR", str(BASE_DIR / "uploads"))
    UPLOAD_STORAGE = os.environ.get("PAWMANITY_UPLOAD_STORAGE", "local")
    UPLOAD_MAX_BYTES = _env_int("PAWMANITY_UPLOAD_MAX_BYTES", 20 * 1024 * 1024)
    # Decoded size per upload, frames x samples per pixel x rows x columns, checked from the header: 40 MP in colour.
    UPLOAD_MAX_SAMPLES = _env_int("PAWMANITY_UPLOAD_MAX_SAMPLES", 120_000_000)
    MEDIA_THREADS = _env_int("PAWMANITY_MEDIA_THREADS", 2)  # images cleaned at once, off the event loop
    MEDIA_QUEUE = _env_int("PAWMANITY_MEDIA_QUEUE", 8)  # uploads waiting for a media thread before 503 server_busy
    # Password hashing and other short CPU work, off the event loop (pawmanity.core.offload). One thread leaves the
    # second core to the loop: a burst of sign-ins then costs sign-in latency, never chat latency.
    CPU_THREADS = _env_int("PAWMANITY_CPU_THREADS", 1)
    CPU_QUEUE = _env_int("PAWMANITY_CPU_QUEUE", 64)  # sign-ins waiting before 503 server_busy
    # The gevent loop monitor (pawmanity.core.observability): how often it samples the loop's lag (0 turns it off)
    # and the turn on the loop above which the greenlet and what it was serving are logged as a stall.
    LOOP_MONITOR_INTERVAL_MS = _env_int("PAWMANITY_LOOP_MONITOR_INTERVAL_MS", 20)
    LOOP_STALL_THRESHOLD_MS = _env_int("PAWMANITY_LOOP_STALL_THRESHOLD_MS", 30)
    UPLOAD_S3_BUCKET = os.environ.get("PAWMANITY_UPLOAD_S3_BUCKET")
    UPLOAD_S3_ENDPOINT_URL = os.environ.get("PAWMANITY_UPLOAD_S3_ENDPOINT_URL")  # MinIO, Ceph, R2...
    UPLOAD_S3_REGION = os.environ.get("PAWMANITY_UPLOAD_S3_REGION")
    UPLOAD_S3_PREFIX = os.environ.get("PAWMANITY_UPLOAD_S3_PREFIX", "uploads/")
    NODE_MODULES_DIR = str(BASE_DIR / "node_modules")

    # The audit chain (pawmanity/audit/trail.py): on PostgreSQL requests insert events unsealed and a chainer seals
    # them after the commit (off the response under gevent); Celery beat seals what a crash left every minute, and
    # `flask audit verify` reports rows still unsealed after this many seconds (is the chainer running?).
    AUDIT_CHAIN_AFTER_COMMIT = True
    AUDIT_CHAIN_DELAY_MS = _env_int("PAWMANITY_AUDIT_CHAIN_DELAY_MS", 50)  # gevent/eventlet: gather commits this long
    AUDIT_CHAIN_STALE_SECONDS = _env_int("PAWMANITY_AUDIT_CHAIN_STALE_SECONDS", 300)

    # Idempotency-Key on creating POSTs: how long a key and its stored answer are kept
    IDEMPOTENCY_KEY_HOURS = _env_int("PAWMANITY_IDEMPOTENCY_KEY_HOURS", 24)

    # Care and scheduling
    GUARDIAN_INVITATION_HOURS = _env_int("PAWMANITY_GUARDIAN_INVITATION_HOURS", 72)
    LATE_CANCEL_HOURS = _env_int("PAWMANITY_LATE_CANCEL_HOURS", 24)
    MAX_ACTIVE_BOOKINGS = _env_int("PAWMANITY_MAX_ACTIVE_BOOKINGS", 5)
    BOOKING_HORIZON_DAYS = _env_int("PAWMANITY_BOOKING_HORIZON_DAYS", 90)
    # A doctor keeps access to a patient this long after their last confirmed visit (see care/access.py).
    DOCTOR_ACCESS_DAYS_AFTER_VISIT = _env_int("PAWMANITY_DOCTOR_ACCESS_DAYS_AFTER_VISIT", 180)

    # Consultations, chat, notifications
    CONSULTATION_OPENS_MINUTES = _env_int("PAWMANITY_CONSULTATION_OPENS_MINUTES", 15)
    CHAT_MESSAGE_MAX_CHARS = 4000
    CHAT_RATE_LIMIT = os.environ.get("PAWMANITY_CHAT_RATE_LIMIT", "30 per 10 seconds")
    MESSAGE_DIGEST_DELAY_MINUTES = _env_int("PAWMANITY_MESSAGE_DIGEST_DELAY_MINUTES", 10)
    REMINDER_WINDOWS = {"24h": 24 * 60, "1h": 60}  # minutes before the start
    SOCKET_REVOCATION_SWEEP_SECONDS = _env_int("PAWMANITY_SOCKET_REVOCATION_SWEEP_SECONDS", 10)

    # Symptom checker: trained artefacts and the ACTIVE pointer
    # Trained versions and the ACTIVE pointer go to a writable folder (a volume shared by app and worker in
    # production), never into the source tree; the artefact shipped with the code is used until one is trained.
    AI_MODEL_DIR = os.environ.get("PAWMANITY_AI_MODEL_DIR", str(INSTANCE_PATH / "models"))
    AI_SHIPPED_MODEL_DIR = str(BASE_DIR / "pawmanity" / "data" / "models")
    AI_TRAINING_CASES = _env_int("PAWMANITY_AI_TRAINING_CASES", 10_000)

    # Pharmacies
    PHARMACY_RESERVATION_MINUTES = _env_int("PAWMANITY_PHARMACY_RESERVATION_MINUTES", 48 * 60)

    # Vitals: how far in the future a reading's time may be (device clocks drift) before it is refused
    VITALS_FUTURE_TOLERANCE_SECONDS = _env_int("PAWMANITY_VITALS_FUTURE_TOLERANCE_SECONDS", 300)
    # Offline sync: how long deletions (and the change log) are kept; an older cursor must resync from scratch.
    SYNC_TOMBSTONE_DAYS = _env_int("PAWMANITY_SYNC_TOMBSTONE_DAYS", 30)

    # Video sessions
    VIDEO_PROVIDER = os.environ.get("PAWMANITY_VIDEO_PROVIDER", "webrtc")
    VIDEO_JOIN_OPENS_MINUTES = _env_int("PAWMANITY_VIDEO_JOIN_OPENS_MINUTES", 10)
    VIDEO_JOIN_TOKEN_SECONDS = _env_int("PAWMANITY_VIDEO_JOIN_TOKEN_SECONDS", 60)
    VIDEO_STUN_URLS = _env_list("PAWMANITY_STUN_URLS", ())
    VIDEO_TURN_URLS = _env_list("PAWMANITY_TURN_URLS", ())
    VIDEO_TURN_SECRET = os.environ.get("PAWMANITY_TURN_SECRET")
    VIDEO_TURN_TTL_SECONDS = _env_int("PAWMANITY_TURN_TTL_SECONDS", 3600)
    # PAWMANITY_VIDEO_PROVIDER=agora: calls go through Agora; tokens last this long (at most until the window ends)
    # and the client renews them through POST /api/v1/video-sessions/{id}/renew.
    AGORA_APP_ID = os.environ.get("PAWMANITY_AGORA_APP_ID") or None
    AGORA_APP_CERTIFICATE = os.environ.get("PAWMANITY_AGORA_APP_CERTIFICATE") or None
    AGORA_TOKEN_SECONDS = _env_int("PAWMANITY_AGORA_TOKEN_SECONDS", 600)

    # Exports and erasure: an export archive can be downloaded this long after it is built (then it is deleted);
    # EXPORT_DIR defaults to exports/ in the instance folder. After an erasure, clinical records are held apart
    # (restricted) this long before they are purged: set it to the longest retention duty that applies.
    EXPORT_DIR = os.environ.get("PAWMANITY_EXPORT_DIR") or None
    EXPORT_HOURS = _env_int("PAWMANITY_EXPORT_HOURS", 48)
    CLINICAL_RETENTION_DAYS = _env_int("PAWMANITY_CLINICAL_RETENTION_DAYS", 10 * 365)

    # Web Push (RFC 8030/8291/8292). Browsers bind subscriptions to the VAPID public key, so every server and
    # worker must sign with the same private key (PEM or base64url). Outside production, without one, a development
    # pair is generated into the instance folder; production without one does not offer push.
    VAPID_PRIVATE_KEY = os.environ.get("PAWMANITY_VAPID_PRIVATE_KEY") or None
    VAPID_SUBJECT = os.environ.get("PAWMANITY_VAPID_SUBJECT", "mailto:no-reply@pawmanity.local")  # a contact URI
    VAPID_GENERATE_DEV_KEY = True
    VAPID_TOKEN_SECONDS = 12 * 3600  # RFC 8292 allows at most 24 hours
    # Subscription endpoints are user input the worker POSTs to: only these push services (and their subdomains).
    PUSH_SERVICE_HOSTS = _env_list("PAWMANITY_PUSH_SERVICE_HOSTS", (
        "fcm.googleapis.com", "push.services.mozilla.com", "notify.windows.com", "push.apple.com"))
    PUSH_ALLOW_HTTP_ENDPOINTS = False
    PUSH_TTL_SECONDS = _env_int("PAWMANITY_PUSH_TTL_SECONDS", 24 * 3600)  # how long a push service keeps a message
    PUSH_TIMEOUT_SECONDS = _env_int("PAWMANITY_PUSH_TIMEOUT_SECONDS", 5)
    PUSH_MAX_SUBSCRIPTIONS_PER_USER = _env_int("PAWMANITY_PUSH_MAX_SUBSCRIPTIONS_PER_USER", 10)

    # Multi-factor sign-in (TOTP, RFC 6238). When required, accounts of these roles must enrol before anything but
    # enrolment works, and sign in with a code; anyone may enrol. Production requires it unless told otherwise.
    MFA_REQUIRED = os.environ.get("PAWMANITY_MFA_REQUIRED", "false").lower() == "true"
    MFA_REQUIRED_ROLES = _env_list("PAWMANITY_MFA_REQUIRED_ROLES", ("doctor", "admin"))
    MFA_ISSUER = os.environ.get("PAWMANITY_MFA_ISSUER", "PAWMANITY")  # the name authenticator apps show
    MFA_CHALLENGE_SECONDS = _env_int("PAWMANITY_MFA_CHALLENGE_SECONDS", 300)  # sign-in: password done, code due
    MFA_CODE_RATE_LIMIT = os.environ.get("PAWMANITY_MFA_CODE_RATE_LIMIT", "5 per 5 minutes")  # wrong codes/account
    # Turning MFA off, new recovery codes and password changes need a sign-in (or re-authentication) this recent.
    REAUTH_MAX_AGE_MINUTES = _env_int("PAWMANITY_REAUTH_MAX_AGE_MINUTES", 10)

    # Outbound webhooks: retries with exponential backoff and full jitter, an endpoint disabled after a streak of
    # failures; only public addresses unless a network is allow-listed (an on-premise receiver, e.g. 10.0.0.0/8).
    WEBHOOK_TIMEOUT_SECONDS = _env_int("PAWMANITY_WEBHOOK_TIMEOUT_SECONDS", 5)
    WEBHOOK_MAX_ATTEMPTS = _env_int("PAWMANITY_WEBHOOK_MAX_ATTEMPTS", 12)
    WEBHOOK_RETRY_BASE_SECONDS = _env_int("PAWMANITY_WEBHOOK_RETRY_BASE_SECONDS", 30)
    WEBHOOK_RETRY_MAX_SECONDS = _env_int("PAWMANITY_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600)
    WEBHOOK_DISABLE_AFTER_FAILURES = _env_int("PAWMANITY_WEBHOOK_DISABLE_AFTER_FAILURES", 20)
    WEBHOOK_ALLOWED_NETWORKS = _env_list("PAWMANITY_WEBHOOK_ALLOWED_NETWORKS", ())


class DevelopmentConfig(Config):
    METRICS_OPEN_WITHOUT_TOKEN = True  # a laptop's own port


class ProductionConfig(Config):
    REQUIRE_REAL_SECRETS = True
    VAPID_GENERATE_DEV_KEY = False  # one key for every process: it must come from the environment
    MFA_REQUIRED = os.environ.get("PAWMANITY_MFA_REQUIRED", "true").lower() == "true"
    GENERATE_FIELD_KEYS = False


class TestingConfig(Config):
    TESTING = True
    METRICS_OPEN_WITHOUT_TOKEN = True
    ASYNC_MODE = "threading"
    SECRET_KEY = "test-secret-key-that-is-long-enough-for-hs256"
    JWT_SECRET_KEY = SECRET_KEY
    # Cheaper hashing keeps the suite quick; the production parameters have their own test.
    ARGON2_MEMORY_KIB = 1024
    ARGON2_TIME_COST = 1
    LOGIN_RATE_LIMIT = "1000 per minute"
    # Tests that check a limit set it low themselves; the rest must never meet one.
    REGISTER_RATE_LIMIT = "1000 per minute"
    DIAGNOSIS_RATE_LIMIT = UPLOAD_RATE_LIMIT = INVITATION_RATE_LIMIT = "1000 per minute"
    TYPING_RATE_LIMIT = PASSWORD_CHECK_RATE_LIMIT = MFA_CODE_RATE_LIMIT = "1000 per minute"
    PUSH_TIMEOUT_SECONDS = 2
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SOCKETIO_MESSAGE_QUEUE = None  # the Socket.IO test client needs in-process delivery; scale-out tests set it
    SOCKET_REVOCATION_SWEEP_SECONDS = 0  # tests sweep explicitly
    DOCSTORE_BREAKER_SECONDS = 0  # tests of the breaker switch it on
    # Tests seal the audit chain explicitly (trail.chain_pending), so a request's counted statements are its own.
    AUDIT_CHAIN_AFTER_COMMIT = False
    CELERY = {**Config.CELERY, "task_always_eager": True, "broker_url": "memory://"}


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}
