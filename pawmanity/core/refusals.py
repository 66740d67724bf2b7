"""What an operation can refuse with, read from the code rather than kept by hand.

`refusals_of(view)` follows a view (and the decorators wrapped around it) through the calls it makes into
PAWMANITY's own modules and collects every problem it can end in: a domain error constructed (`Conflict("...",
code="slot_taken")`, a class's default code otherwise), a werkzeug HTTP exception, or a `problem(status, code=...)`
built by hand. The OpenAPI document shows them as per-status examples, so a client sees the real `code` values.

It is a static reading, so it errs in known ways: a call through an object whose type the code does not name (a
model's method) is not followed, and a code passed along in a variable is resolved to the codes carried by the
exceptions constructed on the way (an exception class whose first argument is `code`, like vitals' UnitError).
tests/test_openapi.py holds the document to what the server really answers.
"""

import ast
import inspect
import textwrap
import types
from dataclasses import dataclass, field
from http import HTTPStatus

from flask import abort
from werkzeug.exceptions import HTTPException

from pawmanity.core.errors import DEFAULT_CODES, DomainError, problem

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


def refusals_of(view):
    """{(status, code): an example detail} for everything `view` can refuse with."""
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
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function.__code__)))  # not unwrapped
    except (OSError, TypeError, SyntaxError):
        return
    body = tree.body[0]
    # Only this function's own statements: nested functions are read when they are called or wrapped.
    nodes = [node for statement in getattr(body, "body", []) for node in _walk_skipping_defs(statement)]
    for node in nodes:
        if isinstance(node, ast.Call):
            _read_call(function, node, reading)


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
