"""One error shape for every failure: RFC 9457 problem details.

Services raise the domain errors below; views never build error bodies. Everything that escapes a view --
HTTPException, a domain error, a webargs/marshmallow validation failure, a JWT failure or an unexpected bug --
leaves as `application/problem+json` with the right status.
"""

import errno
import logging
import sys
from http import HTTPStatus

from blinker import Namespace
from flask import current_app, json, request
from marshmallow import ValidationError
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors
from werkzeug.exceptions import HTTPException, InternalServerError

from pawmanity.core.observability import current_request_id

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
    507: "storage_full",
}

dependency_log = logging.getLogger("pawmanity.dependencies")
# A refused access to patient data, sent after the request's transaction is done with; the audit trail (a domain
# above this platform) subscribes in create_app and writes one `denied` row.
access_denied = Namespace().signal("access-denied")


class DomainError(Exception):
    """A failure a service reports in domain terms; the status is how HTTP spells it."""

    status = 400
    code = "bad_request"
    # Set on refusals of patient data (care/access.py denied()): the handler audits them.
    denial = None

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
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id  # the id a user can quote, also in the X-Request-ID header and the log
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
    if error.denial is not None:
        _audit_denial(error)
    return problem(error.status, detail=error.detail, code=error.code, errors=error.errors, headers=error.headers,
                   extra=error.extra)


def _audit_denial(error):
    try:
        access_denied.send(error.denial, request_line=f"{request.method} {request.path}", status=error.status)
    except Exception as audit_error:  # the refusal still stands; a lost audit row is logged, not a 500
        _rollback_quietly()
        current_app.logger.error("could not audit a denied access: %s", type(audit_error).__name__)


def handle_validation_error(error):
    return problem(422, detail="The request did not pass validation; see `errors`.",
                   errors=flatten_validation_messages(error.normalized_messages()))


def handle_unexpected_error(error):
    failure = dependency_failure(error)
    if failure is not None:
        return dependency_problem(error, failure)
    # The trace goes to the log, never to the client.
    current_app.logger.exception("unhandled error", exc_info=error)
    return problem(500, detail="Something went wrong on our side; it has been logged.")


# (status, code, what failed, what the client is told)
DATABASE_BUSY = (503, "database_busy", "database pool", "Every database connection is in use; retry shortly.")
DATABASE_DOWN = (503, "database_unavailable", "database", "The database is unavailable; retry shortly.")
REDIS_DOWN = (503, "cache_unavailable", "redis", "A backing service is unavailable; retry shortly.")
STORAGE_FULL = (507, "storage_full", "storage", "There is no space left to store this; retry later.")
DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def dependency_failure(error):
    """The kind of dependency failure `error` is (one of the tuples above), or None when it is our own bug.

    The exception and the ones it was raised from are looked at, so a storage or Redis error wrapped by a library
    is still recognised.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sa_errors.TimeoutError):  # QueuePool: no connection free within pool_timeout
            return DATABASE_BUSY
        if isinstance(error, (sa_errors.OperationalError, sa_errors.InterfaceError)) or (
                isinstance(error, sa_errors.DBAPIError) and error.connection_invalidated):
            # Refused or lost connections, connect and statement timeouts, deadlocks: all worth a retry.
            return DATABASE_DOWN
        if isinstance(error, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
            return REDIS_DOWN
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return STORAGE_FULL
        error = error.__cause__ or error.__context__
    return None


def dependency_problem(error, failure):
    """503/507 with Retry-After, the transaction rolled back, and one log line instead of a traceback."""
    status, code, dependency, detail = failure
    _rollback_quietly()
    dependency_log.warning("%s unavailable: %s on %s %s: %s", dependency, type(error).__name__, request.method,
                           request.path, str(error).splitlines()[0][:200] if str(error) else "")
    retry_after = current_app.config.get("DEPENDENCY_RETRY_AFTER_SECONDS", 5)
    return problem(status, detail=detail, code=code, headers={"Retry-After": str(retry_after)})


def _rollback_quietly():
    try:
        current_app.extensions["sqlalchemy"].session.rollback()
    except Exception as rollback_error:  # the connection is gone; the pool discards it when the session closes
        dependency_log.warning("rollback after a dependency failure failed too: %s", type(rollback_error).__name__)


class ProblemOnEscape:
    """WSGI middleware: whatever still escapes Flask (a teardown on a dead connection, say) leaves as problem+json,
    never as the server's HTML error page."""

    def __init__(self, wsgi_app, retry_after):
        self.wsgi_app = wsgi_app
        self.retry_after = retry_after

    def __call__(self, environ, start_response):
        try:
            return self.wsgi_app(environ, start_response)
        except Exception as error:
            failure = dependency_failure(error)
            if failure is None:
                status, code, detail = 500, "internal_error", "Something went wrong on our side; it has been logged."
                dependency_log.error("error escaped the application on %s %s", environ.get("REQUEST_METHOD"),
                                     environ.get("PATH_INFO"), exc_info=error)
            else:
                status, code, dependency, detail = failure
                dependency_log.warning("%s unavailable after the response was built: %s on %s %s", dependency,
                                       type(error).__name__, environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            body = json.dumps({"type": f"urn:pawmanity:problem:{code}", "title": HTTPStatus(status).phrase,
                               "status": status, "detail": detail, "code": code}).encode()
            headers = [("Content-Type", PROBLEM_MIMETYPE), ("Content-Length", str(len(body)))]
            if status != 500:
                headers.append(("Retry-After", str(self.retry_after)))
            start_response(f"{status} {HTTPStatus(status).phrase}", headers, sys.exc_info())
            return [body]


def register_error_handlers(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Exception, handle_unexpected_error)
