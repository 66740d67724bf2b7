"""flask-smorest, adapted: problem-details errors in the OpenAPI document and a Blueprint that knows about auth."""

import re
from functools import wraps
from http import HTTPStatus

import flask_smorest
from flask import current_app, request, send_from_directory
from flask_jwt_extended import current_user, verify_jwt_in_request
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from pawmanity.errors import PROBLEM_MIMETYPE, Forbidden, PreconditionFailed, PreconditionRequired
from pawmanity.schemas import ProblemSchema

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


def _request_fingerprint():
    """What identifies a request for its idempotency key: method, path and body (a multipart body by its parts, as
    the raw stream is left to the form parser)."""
    from pawmanity.services.idempotency import fingerprint

    if request.mimetype == "multipart/form-data":
        parts = [f"{name}={value}".encode() for name, value in sorted(request.form.items(multi=True))]
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            parts.append(f"{name}:{upload.filename}".encode())
            parts.append(upload.stream.read())
            upload.stream.seek(0)
    else:
        parts = [request.get_data(cache=True)]
    return fingerprint(request.method, request.path, parts)


class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields (webargs would drop them silently)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except ValueError as error:  # e.g. an integer of more than 4,300 digits, which json refuses
            return self._handle_invalid_json_error(error, req)


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

    def idempotent(self):
        """Honour an `Idempotency-Key` header on a POST that creates something (services/idempotency.py).

        Place it right under `auth_required()`: the key is scoped to the signed-in user, and the answer stored is
        the serialised response."""

        def decorator(view):
            @wraps(view)
            def once(*args, **kwargs):
                key = request.headers.get("Idempotency-Key")
                if key is None:
                    return view(*args, **kwargs)
                from pawmanity.services import idempotency

                reservation, stored = idempotency.begin(current_user.id, key, _request_fingerprint())
                if stored is not None:
                    response = current_app.response_class(stored.body, status=stored.status,
                                                          content_type=stored.content_type)
                    response.headers.update(idempotency.stored_headers(stored))
                    response.headers["Idempotent-Replayed"] = "true"
                    return response
                try:
                    response = view(*args, **kwargs)
                except BaseException:
                    idempotency.fail(reservation)
                    raise
                response = current_app.make_response(response)
                idempotency.finish(reservation, status=response.status_code, content_type=response.content_type,
                                   headers=response.headers, body=response.get_data())
                return response

            return once

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
