"""Extension objects, created once without an app and bound in create_app(), with the small adaptations of
ours they need: flask-smorest's Api documenting errors as problem details, a JWT manager that decodes a token
once, and a lazy Redis client.

Nothing here opens a connection: each object connects lazily, on first use, inside an app.
"""

from http import HTTPStatus

import flask_smorest
import jwt as pyjwt
import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from apispec.ext.marshmallow.common import resolve_schema_cls
from celery import Celery, Task
from flask import current_app, send_from_directory
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_smorest.utils import prepare_response
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from pawmanity.core.docstore import DocStore
from pawmanity.core.errors import PROBLEM_MIMETYPE
from pawmanity.core.schemas import ProblemSchema


class OneDecodeJWTManager(JWTManager):
    """flask-jwt-extended 4.7 decodes every token twice: once without checking its signature, only to hand its claims
    to a decode-key callback, then for real. PAWMANITY verifies every token with the one configured key, so the first
    decode is work for nothing on every authenticated request; it is skipped unless a decode-key callback is set."""

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        options = {
            "algorithms": jwt_config.decode_algorithms, "audience": jwt_config.decode_audience,
            "csrf_value": csrf_value, "encoded_token": encoded_token,
            "identity_claim_key": jwt_config.identity_claim_key, "issuer": jwt_config.decode_issuer,
            "leeway": jwt_config.leeway, "secret": jwt_config.decode_key,
            "verify_aud": jwt_config.decode_audience is not None, "verify_sub": jwt_config.verify_sub,
        }
        try:
            return _decode_jwt(**options, allow_expired=allow_expired)
        except pyjwt.ExpiredSignatureError as error:
            # What the library attaches for its expired-token callback (a signature-checked decode, as it does).
            error.jwt_header = pyjwt.get_unverified_header(encoded_token)
            error.jwt_data = _decode_jwt(**options, allow_expired=True)
            raise


class SchemaRulesPlugin(BasePlugin):
    """A rule across fields that a marshmallow schema checks in code (doctor_id xor specialty) is written as JSON
    Schema in the schema's `OPENAPI` class attribute, and joins its component in the OpenAPI document. A marshmallow
    schema class inside the rule stands for its JSON Schema (a `$ref`, or inline when the class says so): the shape of
    one field may depend on another's value (sync/resolve's `record` on its `table`)."""

    spec = None

    def init_spec(self, spec):
        super().init_spec(spec)
        self.spec = spec

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        rules = self._resolved(dict(getattr(schema if isinstance(schema, type) else type(schema), "OPENAPI", {})))
        for alternatives in ("oneOf", "anyOf"):
            if alternatives in rules and "properties" in definition:
                # Each alternative repeats the properties (which changes nothing it matches), with its own in place
                # of the shared ones it narrows: Postman's import builds the example body from the first alternative
                # alone, and would otherwise send `{}`.
                rules[alternatives] = [{**alternative, "properties": {**definition["properties"],
                                                                      **alternative.get("properties", {})}}
                                       for alternative in rules[alternatives]]
        return rules

    def _resolved(self, rule):
        if isinstance(rule, type) and issubclass(rule, ma.Schema):
            converter = next(plugin.converter for plugin in self.spec.plugins if isinstance(plugin, MarshmallowPlugin))
            return converter.resolve_nested_schema(rule)
        if isinstance(rule, dict):
            return {key: self._resolved(value) for key, value in rule.items()}
        if isinstance(rule, list):
            return [self._resolved(value) for value in rule]
        return rule


def schema_component_name(schema):
    """A nested schema is written into its parent in place, instead of as a `$ref` to a component of its own, when its
    class says `OPENAPI_INLINE = True`. Postman's import (openapi-to-postmanv2) spends one level of its nesting limit
    on every `$ref` it follows as on every object, array and field, and the limit is 6, not 10, once a document holds
    more than 500 `$ref`s (ours does): a body nested as deep as the sync push reaches its last field only without
    them."""
    resolved = resolve_schema_cls(schema)
    schema_class = resolved[0] if isinstance(resolved, list) else resolved
    return None if getattr(schema_class, "OPENAPI_INLINE", False) else resolver(schema)


class PawmanityApi(flask_smorest.Api):
    """flask-smorest's Api: error responses documented as application/problem+json, Swagger UI served locally."""

    ERROR_SCHEMA = ProblemSchema
    _undescribed = ()

    def init_app(self, app, *, spec_kwargs=None):
        spec_kwargs = {
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_component_name),
            "extra_plugins": [SchemaRulesPlugin()],
            # Generated clients and Postman take their base URL from here; paths carry the /api/v1 prefix.
            "servers": [{"url": app.config["PUBLIC_URL"], "description": "This deployment"}],
            # Swagger UI shows this above the operations: the realtime half of the API is described there.
            "info": {"description": "The REST API. Live chat, notifications and video signalling run over "
                                    "Socket.IO: see the [AsyncAPI document](/api/v1/asyncapi.json)."},
            **(spec_kwargs or {}),
        }
        self._undescribed = []  # what the previous app left undescribed is its own, and gone with it
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.add_url_rule("/api/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_ui_asset)

    # A blueprint's routes are served at once; its description in the OpenAPI document waits until the document is
    # first read. apispec resolving every schema (and the error-code reader walking every view) is two thirds of
    # create_app(), and most apps (a worker's, a CLI command's, nearly every test's) never read the document.

    def register_blueprint(self, blp, *, parameters=None, **options):
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        app = self._app
        self.describe(lambda spec: (
            blp.register_views_in_doc(self, app, spec, name=name, parameters=parameters),
            spec.tag({"name": name, "description": blp.description})))

    def describe(self, addition):
        """Add to the OpenAPI document when it is first read, in order with the blueprints' descriptions."""
        self._undescribed.append(addition)

    @property
    def spec(self):
        while self._undescribed:
            self._undescribed.pop(0)(self._spec)
        return self._spec

    @spec.setter
    def spec(self, value):
        self._spec = value

    def _register_error_handlers(self):
        """pawmanity.core.errors registers the handlers; smorest's own would answer in a different shape."""

    def _register_responses(self):
        # Same components smorest registers, but error bodies are documented as application/problem+json.
        for status in HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            elif not (100 <= status < 200) and status not in (204, 304):
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _swagger_ui_asset(filename):
    # Swagger UI is served from the installed swagger-ui-bundle package: no CDN for the docs page.
    import swagger_ui_bundle

    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)


class RedisClient:
    """Redis, when REDIS_URL is configured: one lazily created client per app, keys under one prefix."""

    def init_app(self, app):
        app.extensions["redis"] = {"url": app.config.get("REDIS_URL"), "client": None}

    @property
    def enabled(self):
        return bool(current_app.extensions["redis"]["url"])

    @property
    def client(self):
        state = current_app.extensions["redis"]
        if state["client"] is None:
            import redis

            state["client"] = redis.Redis.from_url(state["url"], socket_timeout=2, socket_connect_timeout=2)
        return state["client"]

    def key(self, *parts):
        return current_app.config["REDIS_KEY_PREFIX"] + ":".join(parts)


# Stable constraint names keep Alembic diffs identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects keep their loaded values after a commit, so a response is serialised without touching the database
# again: a connection lost just after the commit can no longer turn a stored write into a reported failure.
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION), session_options={"expire_on_commit": False})
migrate = Migrate()
jwt = OneDecodeJWTManager()
api = PawmanityApi()
socketio = SocketIO()
cors = CORS()
mail = Mail()
class ViewLimiter(Limiter):
    """Flask-Limiter where only views carry limits (pawmanity.core.ratelimits.rate_limited).

    Its before_request hook checks the application-wide, default, blueprint and meta limits, and does its bookkeeping
    on every request even when there are none; PAWMANITY configures none, so the hook returns at once. A view's own
    limits are checked by its decorator, as before."""

    def _check_request_limit(self, callable_name=None, in_middleware=True):
        if in_middleware and not self._has_request_wide_limits():
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)

    def _has_request_wide_limits(self):
        manager = self.limit_manager
        return bool(manager.application_limits or manager.default_limits or manager._blueprint_limits
                    or self._meta_limits or self._in_memory_fallback)


limiter = ViewLimiter(key_func=get_remote_address, default_limits=[])
docstore = DocStore()
redis_client = RedisClient()


def celery_init_app(app):
    """Celery bound to the Flask app: tasks run inside an app context; eager (in-process) in the embedded default.

    The worker finds each domain's tasks through the `include` list in the CELERY setting.
    """
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
