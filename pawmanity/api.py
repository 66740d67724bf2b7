"""flask-smorest, adapted: problem-details errors in the OpenAPI document and a Blueprint that knows about auth."""

import re
from functools import wraps
from http import HTTPStatus

import flask_smorest
from flask import Request, request, send_from_directory
from flask_jwt_extended import current_user, verify_jwt_in_request
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from pawmanity.errors import (
    PROBLEM_MIMETYPE, Forbidden, NestingTooDeep, PreconditionFailed, PreconditionRequired,
)
from pawmanity.schemas import MAX_NESTING, ProblemSchema, check_nesting

API_PREFIX = "/api/v1"
JSON_BODY_TYPES = ("application/json", "multipart/form-data")


class PawmanityApi(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        spec_kwargs = {
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            **(spec_kwargs or {}),
        }
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.add_url_rule("/api/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_ui_asset)

    def _register_error_handlers(self):
        """pawmanity.errors registers the handlers; smorest's own would answer in a different shape."""

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


class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields (webargs would drop them silently)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req):
        try:
            body = super()._raw_load_json(req)
        except RecursionError:  # thousands of levels: the json module itself gives up
            raise _too_deep() from None
        except ValueError as error:  # e.g. an integer of more than 4,300 digits, which json refuses
            return self._handle_invalid_json_error(error, req)
        check_nesting(body)
        return body


def _too_deep():
    return NestingTooDeep(f"The request body nests deeper than {MAX_NESTING} levels.")


class _TooDeepToParse(ValueError):
    """A ValueError, so that get_json(silent=True) callers (a rate-limit key) treat it as unreadable JSON."""


class BoundedJSONRequest(Request):
    """request.get_json() with the depth limit the schemas' parser has, and 422 rather than 500 past it."""

    @property
    def json_module(self):
        return _BoundedJSON

    @json_module.setter
    def json_module(self, provider):
        """Flask hands each request the app's provider; _BoundedJSON already parses through it."""

    def on_json_loading_failed(self, error):
        if isinstance(error, _TooDeepToParse):
            raise _too_deep()
        return super().on_json_loading_failed(error)


class _BoundedJSON:
    """Flask's JSON, refusing nesting past MAX_NESTING (werkzeug calls `loads` only)."""

    @staticmethod
    def loads(data, **kwargs):
        from flask import json

        try:
            value = json.loads(data, **kwargs)
            check_nesting(value)
        except (RecursionError, NestingTooDeep):
            raise _TooDeepToParse("nested too deeply") from None
        return value

    @staticmethod
    def dumps(value, **kwargs):
        from flask import json

        return json.dumps(value, **kwargs)

class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def auth_required(self, *roles):
        """Require a valid access token (401) and, when roles are named, one of them (403).

        The role comes from the database user loaded for this request, not from the token, so a role change
        takes effect at once.
        """

        def decorator(view):
            @wraps(view)
            def guarded(*args, **kwargs):
                verify_jwt_in_request()
                if roles and current_user.role not in roles:
                    raise Forbidden("Your role does not allow this action.")
                return view(*args, **kwargs)

            guarded = self.doc(security=[{"bearerAuth": []}])(guarded)
            guarded = self.alt_response(401, response="UNAUTHORIZED")(guarded)
            if roles:
                guarded = self.alt_response(403, response="FORBIDDEN")(guarded)
            return guarded

        return decorator

    def errors(self, *statuses):
        """Document error responses a view can give (the body is always a problem)."""

        def decorator(view):
            for status in statuses:
                view = self.alt_response(status, response=HTTPStatus(status).name)(view)
            return view

        return decorator


def require_json_bodies():
    """A body we would misread is refused with 415 rather than parsed as empty."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.path.startswith(API_PREFIX):
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if has_body and request.mimetype not in JSON_BODY_TYPES and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("Send the request body as application/json.")


# Versioned resources (patients, medical records): the ETag is the row's version number.
IF_MATCH_PATTERN = re.compile(r'^\s*"(\d{1,9})"\s*$')
IF_MATCH_DOC = {"in": "header", "name": "If-Match", "schema": {"type": "string"},
                "description": 'The ETag you read, e.g. "3". A stale or malformed value gets 412.'}


def etag_for(version):
    return f'"{version}"'


def if_match_version(*, required):
    """The version named by If-Match: None when absent (428 when required); 412 when malformed."""
    header = request.headers.get("If-Match")
    if header is None:
        if required:
            raise PreconditionRequired("Send If-Match with the ETag you read, so no change is lost.")
        return None
    match = IF_MATCH_PATTERN.match(header)
    if match is None:
        raise PreconditionFailed("If-Match must be the ETag you read, such as \"3\".", code="malformed_if_match")
    return int(match.group(1))


def with_etag(body, version, status=200):
    return body, status, {"ETag": etag_for(version)}
