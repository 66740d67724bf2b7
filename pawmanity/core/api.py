"""flask-smorest, adapted: problem-details errors in the OpenAPI document and a Blueprint that knows about auth."""

import re
from functools import wraps
from http import HTTPStatus

import flask_smorest
from flask import current_app, request, send_from_directory
from flask_jwt_extended import current_user, verify_jwt_in_request
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from pawmanity.core.errors import PROBLEM_MIMETYPE, Forbidden, PreconditionFailed, PreconditionRequired
from pawmanity.core.schemas import ProblemSchema

API_PREFIX = "/api/v1"
JSON_BODY_TYPES = ("application/json", "multipart/form-data")


class PawmanityApi(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        spec_kwargs = {
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            # Generated clients and Postman take their base URL from here; paths carry the /api/v1 prefix.
            "servers": [{"url": app.config["PUBLIC_URL"], "description": "This deployment"}],
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
            return super()._raw_load_json(req)
        except ValueError as error:  # e.g. an integer of more than 4,300 digits, which json refuses
            return self._handle_invalid_json_error(error, req)

    def load_files(self, req, schema):
        # An upload is one multipart/form-data body: its text fields and its file are one schema, and so one
        # requestBody in the OpenAPI document (two arguments would leave OpenAPI 2's `in: formData` behind).
        parts = MultiDict([*req.form.items(multi=True), *req.files.items(multi=True)])
        return self._makeproxy(parts, schema)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        # Every operation gets a stable operationId (`<blueprint>_<view>`), which generated clients and Postman
        # use to name their methods; a view serving several methods adds the method.
        for endpoint, info in self._docs.items():
            methods = [method for method in info if method != "parameters"]
            for method in methods:
                operation_id = f"{name}_{endpoint}" + (f"_{method}" if len(methods) > 1 else "")
                info[method].setdefault("manual_doc", {}).setdefault("operationId", operation_id)
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

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


def locate_created(response):
    """201 answers carry Location. A PUT that created names itself; a POST that created `{"id": ...}` names
    `<collection>/<id>` or, for an action under a collection (`/appointments/earliest`), `<parent>/<id>`: whichever
    the API serves with GET, so Location never points at nothing. Views may set their own."""
    if response.status_code != 201 or "Location" in response.headers:
        return response
    if request.method == "PUT":
        response.headers["Location"] = request.path
        return response
    created = response.get_json(silent=True) if response.is_json else None
    if not isinstance(created, dict) or not isinstance(created.get("id"), str):
        return response
    path = request.path.rstrip("/")
    for collection in (path, path.rpartition("/")[0]):
        location = f"{collection}/{created['id']}"
        try:
            current_app.url_map.bind("").match(location, method="GET")
        except HTTPException:
            continue
        response.headers["Location"] = location
        break
    return response


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
