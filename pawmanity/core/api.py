"""flask-smorest, adapted: a Blueprint that knows about auth, idempotency keys, operation ids and the problems each
operation can answer with, a stricter argument parser, and the request hooks every API answer goes through."""

import ast
import functools
import inspect
import re
import textwrap
import types
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus

import flask_smorest
from flask import Request, abort, current_app, json, request
from flask_jwt_extended import current_user, verify_jwt_in_request
from marshmallow import missing
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import abort as abort_with_messages
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, UnsupportedMediaType
from werkzeug.utils import cached_property

from pawmanity.core import idempotency
from pawmanity.core.errors import (
    DEFAULT_CODES,
    PROBLEM_MIMETYPE,
    DomainError,
    Forbidden,
    NestingTooDeep,
    PreconditionFailed,
    PreconditionRequired,
    problem,
)
from pawmanity.core.offload import cooperative_stream
from pawmanity.core.schemas import MAX_NESTING, Schema, check_nesting

API_PREFIX = "/api/v1"
JSON_BODY_TYPES = ("application/json", "multipart/form-data")


def _request_fingerprint():
    """What identifies a request for its idempotency key: method, path and body (a multipart body by its parts, as
    the raw stream is left to the form parser)."""
    if request.mimetype == "multipart/form-data":
        parts = [f"{name}={value}".encode() for name, value in sorted(request.form.items(multi=True))]
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            parts.append(f"{name}:{upload.filename}".encode())
            parts.append(upload.stream.read())
            upload.stream.seek(0)
    else:
        parts = [request.get_data(cache=True)]
    return idempotency.fingerprint(request.method, request.path, parts)


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

    def load_json(self, req, schema):
        # Every JSON body is documented as required. With none at all webargs would load {}, which a schema whose
        # fields are all optional (a PATCH) accepts, and the request would go on to be judged by the rest of it.
        data = super().load_json(req, schema)
        if data is missing and not req.get_data(cache=True):
            abort_with_messages(422, messages={"json": {"_schema": ["This operation takes a JSON body; none came."]}})
        return data

    def load_files(self, req, schema):
        # An upload is one multipart/form-data body: its text fields and its file are one schema, and so one
        # requestBody in the OpenAPI document (two arguments would leave OpenAPI 2's `in: formData` behind).
        parts = MultiDict([*req.form.items(multi=True), *req.files.items(multi=True)])
        return self._makeproxy(parts, schema)


def _too_deep():
    return NestingTooDeep(f"The request body nests deeper than {MAX_NESTING} levels.")


class _TooDeepToParse(ValueError):
    """A ValueError, so that get_json(silent=True) callers (a rate-limit key) treat it as unreadable JSON."""


class BoundedJSONRequest(Request):
    """request.get_json() with the depth limit the schemas' parser has, and 422 rather than 500 past it; and a body
    that is read in chunks with a turn for the event loop's other greenlets after each (offload.cooperative_stream):
    a multipart upload is parsed as it is read, so read in one go it held the loop for its whole parse."""

    @cached_property
    def stream(self):
        return cooperative_stream(Request.stream.fget(self))

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
        try:
            value = json.loads(data, **kwargs)
            check_nesting(value)
        except (RecursionError, NestingTooDeep):
            raise _TooDeepToParse("nested too deeply") from None
        return value

    @staticmethod
    def dumps(value, **kwargs):
        return json.dumps(value, **kwargs)


def _add_header_parameters(doc, doc_info, **kwargs):
    doc.setdefault("parameters", []).extend(doc_info.get("header_parameters", []))
    return doc


def _honours_idempotency_key(view):
    while view is not None:
        if getattr(view, "honours_idempotency_key", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(_add_header_parameters)

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        # Every operation gets a stable operationId (`<blueprint>_<view>`), which generated clients and Postman
        # use to name their methods; a view serving several methods adds the method. Its error responses show,
        # per status, the problem codes the code can answer with (operation_refusals below).
        for endpoint, info in self._docs.items():
            methods = [method for method in info if method != "parameters"]
            view = app.view_functions[f"{name}.{endpoint}"]
            has_path_parameters = bool(next(app.url_map.iter_rules(f"{name}.{endpoint}")).arguments)
            for method in methods:
                operation_id = f"{name}_{endpoint}" + (f"_{method}" if len(methods) > 1 else "")
                manual_doc = info[method].setdefault("manual_doc", {})
                manual_doc.setdefault("operationId", operation_id)
                declared = {int(status) for status in info[method].get("response", {}).get("responses", {})}
                found = operation_refusals(view, info[method].get("arguments", {}).get("parameters", []),
                                           has_path_parameters=has_path_parameters)
                manual_doc.setdefault("responses", {}).update(error_responses(found, declared))
                # Header parameters join the ones the arguments give (a manual list would replace those).
                # (self._docs outlives one app: the manual list is moved aside once, for every app to find.)
                if "manual_parameters" not in info[method]:
                    info[method]["manual_parameters"] = manual_doc.pop("parameters", [])
                info[method]["header_parameters"] = [*info[method]["manual_parameters"], *(
                    [IDEMPOTENCY_KEY_DOC] if _honours_idempotency_key(view) else [])]
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    def auth_required(self, *roles):
        """Require a valid access token (401) and, when roles are named, one of them (403).

        The role comes from the database user loaded for this request, not from the token, so a role change
        takes effect at once.
        """

        def decorator(view):
            if roles:
                view = _role_required(view, roles)

            @wraps(view)
            def guarded(*args, **kwargs):
                verify_jwt_in_request()
                return view(*args, **kwargs)

            guarded = self.doc(security=[{"bearerAuth": []}])(guarded)
            guarded = self.alt_response(401, response="UNAUTHORIZED")(guarded)
            if roles:
                guarded = self.alt_response(403, response="FORBIDDEN")(guarded)
            return guarded

        return decorator

    def idempotent(self):
        """Honour an `Idempotency-Key` header on a POST that creates something (core/idempotency.py).

        Place it right under `auth_required()`: the key is scoped to the signed-in user, and the answer stored is
        the serialised response."""

        def decorator(view):
            @wraps(view)
            def once(*args, **kwargs):
                key = request.headers.get("Idempotency-Key")
                if key is None:
                    return view(*args, **kwargs)
                reservation, stored = idempotency.begin(current_user.id, key, _request_fingerprint())
                if stored is not None:
                    response = current_app.response_class(idempotency.stored_body(stored), status=stored.status,
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

            once.honours_idempotency_key = True
            return once

        return decorator

    def errors(self, *statuses):
        """Document error responses a view can give (the body is always a problem)."""

        def decorator(view):
            for status in statuses:
                view = self.alt_response(status, response=HTTPStatus(status).name)(view)
            return view

        return decorator


def _role_required(view, roles):
    """The role check, a wrapper of its own so that only views with roles document its 403."""

    @wraps(view)
    def role_checked(*args, **kwargs):
        if current_user.role not in roles:
            raise Forbidden("Your role does not allow this action.")
        return view(*args, **kwargs)

    return role_checked


BODY_LOCATIONS = ("json", "form", "files")


def operation_refusals(view, arguments, *, has_path_parameters):
    """(status, code) -> detail for one operation: what its view can raise, and what refusing its input gives."""
    found = {}
    if arguments:  # webargs/marshmallow, through errors.handle_validation_error / handle_http_exception
        found[(422, "validation_failed")] = "The request did not pass validation; see `errors`."
        found.update(refusals_of(Schema.refuse_unstorable_text))
    if any(argument.get("in") in BODY_LOCATIONS for argument in arguments):
        found[(400, "malformed_json")] = "The request body is not valid JSON."
        found.update(refusals_of(require_json_bodies))
        found.update(refusals_of(StrictParser._raw_load_json))
    if has_path_parameters:  # a path that matches no route, or an id of the wrong form
        found[(404, "not_found")] = "No such resource."
    for refusal, detail in refusals_of(view).items():
        found.setdefault(refusal, detail)
    # A view can be exempt from a check its decorators would make (identity's mfa_exempt names the code it skips).
    exempt = getattr(view, "exempt_refusals", ())
    return {refusal: detail for refusal, detail in found.items() if refusal[1] not in exempt}


def error_responses(found, declared):
    """OpenAPI responses for every error status, each with one example per problem code."""
    statuses = sorted({status for status, _ in found} | {status for status in declared if status >= 400})
    responses = {}
    for status in statuses:
        codes = {code: detail for (code_status, code), detail in sorted(found.items()) if code_status == status}
        if not codes:
            codes = {DEFAULT_CODES.get(status, "error"): HTTPStatus(status).description}
        examples = {code: {"summary": code, "value": {"type": f"urn:pawmanity:problem:{code}",
                                                      "title": HTTPStatus(status).phrase, "status": status,
                                                      "detail": detail, "code": code}}
                    for code, detail in codes.items()}
        responses[status] = {
            "description": f"{HTTPStatus(status).phrase}: `code` is one of " + ", ".join(f"`{c}`" for c in codes),
            "content": {PROBLEM_MIMETYPE: {"schema": {"$ref": "#/components/schemas/Problem"},
                                           "examples": examples}},
        }
    return responses


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
IF_MATCH_DOC = {"in": "header", "name": "If-Match", "schema": {"type": "string", "pattern": r'^"[0-9]{1,9}"$'},
                "description": 'The ETag you read, e.g. "3". A stale or malformed value gets 412.'}


IDEMPOTENCY_KEY_DOC = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    # idempotency.KEY_PATTERN, without the outer spaces an HTTP client would strip.
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
    "description": "Retry safely: the same key with the same request replays the first answer "
                   "(`Idempotent-Replayed: true`); with another request it is 422 `idempotency_key_reused`; while "
                   "the first is still running, 409 `idempotency_key_in_use`. Keys are per user and expire.",
}


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


# What an operation can refuse with, read from the code rather than kept by hand.
#
# What an operation can refuse with, read from the code rather than kept by hand.
#
# `refusals_of(view)` follows a view (and the decorators wrapped around it) through the calls it makes into
# PAWMANITY's own modules and collects every problem it can end in: a domain error constructed (`Conflict("...",
# code="slot_taken")`, a class's default code otherwise), a werkzeug HTTP exception, or a `problem(status, code=...)`
# built by hand. The OpenAPI document shows them as per-status examples, so a client sees the real `code` values.
#
# It is a static reading, so it errs in known ways: a call through an object whose type the code does not name (a
# model's method) is not followed, and a code passed along in a variable is resolved to the codes carried by the
# exceptions constructed on the way (an exception class whose first argument is `code`, like vitals' UnitError).
# tests/test_openapi.py holds the document to what the server really answers.

OWN_PACKAGES = ("pawmanity", "blueprints")
# Calls into libraries that end in our own callbacks: the callbacks are followed instead (see follow_instead).
_CALLBACKS = {}


def follow_instead(library_function, callbacks):
    """Tell the reading that `library_function` can end in `callbacks()` (functions of ours), e.g. the JWT check
    in the JWT manager's error loaders."""
    _CALLBACKS[library_function] = callbacks


@dataclass
class _Reading:
    found: dict = field(default_factory=dict)  # (status, code) -> detail
    dynamic: set = field(default_factory=set)  # statuses raised with a code held in a variable
    carried: set = field(default_factory=set)  # codes given to code-carrying exceptions
    seen: set = field(default_factory=set)

    def add(self, status, code, detail):
        code = code or DEFAULT_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
        self.found.setdefault((status, code), detail or HTTPStatus(status).description)


@functools.cache
def refusals_of(view):
    """{(status, code): an example detail} for everything `view` can refuse with (read once per process: the code
    does not change while it runs). Callers must not modify the answer."""
    reading = _Reading()
    layer = view
    while layer is not None:  # the view and each decorator's wrapper around it (auth, idempotency, ...)
        _read_function(layer, reading)
        layer = getattr(layer, "__wrapped__", None)
    for status in reading.dynamic:
        for code in reading.carried:
            reading.add(status, code, None)
    return reading.found


def _own(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] in OWN_PACKAGES


def _read_function(function, reading):
    function = getattr(function, "__func__", function)
    if not isinstance(function, types.FunctionType) or function.__code__ in reading.seen or not _own(function):
        return
    reading.seen.add(function.__code__)
    for node in _calls_in(function.__code__):
        _read_call(function, node, reading)


@functools.cache
def _calls_in(code):
    """The calls among a function's own statements (nested functions are read when they are called or wrapped).

    Parsed once per function and process: every operation's reading walks the same services and helpers, and
    parsing them again for each one made every create_app() take seconds."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))  # not unwrapped
    except (OSError, TypeError, SyntaxError):
        return ()
    body = tree.body[0]
    return tuple(node for statement in getattr(body, "body", []) for node in _walk_skipping_defs(statement)
                 if isinstance(node, ast.Call))


def _walk_skipping_defs(node):
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            yield from _walk_skipping_defs(child)


def _read_call(function, call, reading):
    callee = _resolve(function, call.func)
    if callee is None:
        return
    keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
    if isinstance(callee, type) and issubclass(callee, DomainError):
        status = _literal(keywords.get("status"))
        status = status if isinstance(status, int) else callee.status
        if "code" in keywords and not isinstance(_literal(keywords["code"]), str):
            reading.dynamic.add(status)
            return
        reading.add(status, _literal(keywords.get("code")) or callee.code, _detail(call))
    elif isinstance(callee, type) and issubclass(callee, HTTPException) and callee.code:
        reading.add(callee.code, None, _detail(call))
    elif callee is problem or callee is abort:
        status = _literal(call.args[0]) if call.args else None
        if isinstance(status, int):
            code = _literal(keywords.get("code"))
            reading.add(status, code if isinstance(code, str) else None, _literal(keywords.get("detail")))
    elif isinstance(callee, type) and issubclass(callee, Exception) and _own(callee):
        parameters = list(inspect.signature(callee.__init__).parameters)
        code = _literal(call.args[0]) if call.args else None
        if parameters[1:2] == ["code"] and isinstance(code, str):
            reading.carried.add(code)
    elif callee in _CALLBACKS:
        for callback in _CALLBACKS[callee]():
            _read_function(callback, reading)
    else:
        _read_function(callee, reading)
        for argument in call.args:  # a function of ours handed over to be called back
            passed = _resolve(function, argument)
            if isinstance(passed, types.FunctionType):
                _read_function(passed, reading)


def _resolve(function, node):
    """The object an expression names inside `function`, when its globals, closure or class say which."""
    if isinstance(node, ast.Name):
        closure = dict(zip(function.__code__.co_freevars, (cell.cell_contents for cell in function.__closure__ or ())))
        if node.id in closure:
            return closure[node.id]
        return function.__globals__.get(node.id, getattr(__builtins__, node.id, None)
                                        if not isinstance(__builtins__, dict) else __builtins__.get(node.id))
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            owner = _owning_class(function)
        else:
            owner = _resolve(function, node.value)
        if owner is None:
            return None
        try:
            return inspect.getattr_static(owner, node.attr) if isinstance(owner, type) else getattr(owner, node.attr)
        except (AttributeError, RuntimeError):  # RuntimeError: a proxy (current_app) outside an app context
            return None
    return None


def _owning_class(function):
    names = function.__qualname__.split(".")[:-1]
    owner = function.__globals__.get(names[0]) if names else None
    for name in names[1:]:
        owner = getattr(owner, name, None)
    return owner if isinstance(owner, type) else None


def _literal(node):
    return node.value if isinstance(node, ast.Constant) else None


def _detail(call):
    """The sentence a client reads, as written in the code (`…` where an f-string interpolates)."""
    if not call.args:
        return None
    node = call.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.values)
    return None
