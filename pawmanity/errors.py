"""One error shape for every failure: RFC 9457 problem details.

Services raise the domain errors below; views never build error bodies. Everything that escapes a view --
HTTPException, a domain error, a webargs/marshmallow validation failure, a JWT failure or an unexpected bug --
leaves as `application/problem+json` with the right status.
"""

from http import HTTPStatus

from flask import current_app, json
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MIMETYPE = "application/problem+json"

# A stable machine-readable code per status, used when nothing more specific is known.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class DomainError(Exception):
    """A failure a service reports in domain terms; the status is how HTTP spells it."""

    status = 400
    code = "bad_request"

    def __init__(self, detail, *, code=None, errors=None, headers=None, extra=None):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class InvalidInput(DomainError):
    status, code = 422, "validation_failed"


class NestingTooDeep(InvalidInput):
    code = "json_too_deep"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class PreconditionFailed(DomainError):
    status, code = 412, "precondition_failed"


class PreconditionRequired(DomainError):
    status, code = 428, "precondition_required"


class ServiceUnavailable(DomainError):
    status, code = 503, "service_unavailable"


def problem(status, *, detail=None, code=None, errors=None, headers=None, extra=None):
    """Build the one error response.

    `errors` maps field names to lists of messages (validation only); `extra` adds RFC 9457 extension members.
    """
    status = int(status)
    code = code or DEFAULT_CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
    body = {
        "type": f"urn:pawmanity:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def flatten_validation_messages(messages):
    """webargs nests messages by location ({"json": {...}, "query": {...}}); clients want field -> messages."""
    if not isinstance(messages, dict):
        return {"_schema": _as_list(messages)}
    flat = {}
    for location, fields in messages.items():
        if location in ("json", "query", "form", "files", "headers", "view_args", "path") and isinstance(fields, dict):
            for field, field_messages in fields.items():
                flat.setdefault(field, []).extend(_as_list(field_messages))
        else:
            flat.setdefault(location, []).extend(_as_list(fields))
    return flat


def _as_list(messages):
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return messages
    if isinstance(messages, str):
        return [messages]
    return [messages]  # nested structures (lists of objects) keep their shape


def handle_http_exception(error):
    if isinstance(error, InternalServerError):
        return handle_unexpected_error(error.original_exception or error)
    data = getattr(error, "data", None) or {}
    headers = dict(error.get_headers())
    headers.update(data.get("headers") or {})
    messages = data.get("errors") or data.get("messages")
    if error.code == 400 and messages and _is_malformed_json(messages):
        return problem(400, detail="The request body is not valid JSON.", code="malformed_json", headers=headers)
    errors = flatten_validation_messages(messages) if messages else None
    detail = data.get("message") or error.description
    if error.code == 422 and errors:
        detail = "The request did not pass validation; see `errors`."
    return problem(error.code, detail=detail, code=data.get("code"), errors=errors, headers=headers)


def _is_malformed_json(messages):
    return isinstance(messages, dict) and messages.get("json") == ["Invalid JSON body."]


def handle_domain_error(error):
    return problem(error.status, detail=error.detail, code=error.code, errors=error.errors, headers=error.headers,
                   extra=error.extra)


def handle_validation_error(error):
    return problem(422, detail="The request did not pass validation; see `errors`.",
                   errors=flatten_validation_messages(error.normalized_messages()))


def handle_unexpected_error(error):
    # The trace goes to the log, never to the client.
    current_app.logger.exception("unhandled error", exc_info=error)
    return problem(500, detail="Something went wrong on our side; it has been logged.")


def register_error_handlers(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Exception, handle_unexpected_error)
