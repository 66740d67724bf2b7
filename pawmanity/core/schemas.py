"""Shared marshmallow building blocks: strict input, UTC output, the problem body, pages."""

import re
from datetime import datetime, timezone

import marshmallow as ma
from marshmallow import fields, validate

from pawmanity.core.errors import InvalidInput, NestingTooDeep

# No request body or event needs more; a deeper one is refused before any recursive code (ours, marshmallow's)
# walks it.
MAX_NESTING = 32
# In a decoded Python string every surrogate is unpaired: JSON's paired escapes decode to one astral character.
UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")


class Schema(ma.Schema):
    """Unknown fields are refused, never silently dropped; no string may carry a NUL character (PostgreSQL text
    cannot store one, and no honest client sends one) or an unpaired surrogate (not Unicode: it cannot be encoded
    as UTF-8 to be stored); nothing may nest deeper than MAX_NESTING."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        problem = text_problem(data)
        if problem:
            # Its own code: JSON Schema cannot say "no unpaired surrogate", so a client that followed the OpenAPI
            # document can still meet this refusal, and must be able to tell it from a schema violation.
            raise InvalidInput(problem, code="unstorable_text", errors={"_schema": [problem]})
        return data


def text_problem(value):
    """Why `value` (parsed JSON, a query string or a form) cannot be accepted, or None. Raises NestingTooDeep.

    Iterative, so that the depth check itself cannot overflow the stack."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "Text must not contain NUL characters."
            if UNPAIRED_SURROGATE.search(item):
                return "Text must be valid Unicode: it contains an unpaired surrogate."
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple)):
            children = item
        elif hasattr(item, "getlist"):  # query strings and forms
            children = [*item.keys(), *(part for key in item.keys() for part in item.getlist(key))]
        else:
            continue
        if depth > MAX_NESTING:
            raise NestingTooDeep(f"The data nests deeper than {MAX_NESTING} levels.")
        pending.extend((child, depth + 1) for child in children)
    return None


def check_nesting(value):
    """Raise NestingTooDeep when containers nest deeper than MAX_NESTING (strings are not looked at)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, (list, tuple)):
            continue
        if depth > MAX_NESTING:
            raise NestingTooDeep(f"The data nests deeper than {MAX_NESTING} levels.")
        pending.extend((child, depth + 1) for child in item)


EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc)


# The range as the OpenAPI document states it (JSON Schema has no minimum for a date-time): the date part of a
# time between 1900 and 2200 whatever its offset, so the first and last day are left out.
IN_RANGE_DATE_PATTERN = (r"^((190[1-9]|19[1-9][0-9]|20[0-9]{2}|21[0-8][0-9]|219[0-8])-[0-9]{2}-[0-9]{2}"
                         r"|1900-(0[2-9]|1[0-2])-[0-9]{2}|1900-01-(0[2-9]|[12][0-9]|3[01])"
                         r"|2199-(0[1-9]|1[01])-[0-9]{2}|2199-12-([012][0-9]|30))T")


class UTCDateTime(fields.AwareDateTime):
    """Inputs must carry an offset (naive -> 422) and lie between 1900 and 2200; outputs are UTC with a trailing Z."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": IN_RANGE_DATE_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError:
            raise ma.ValidationError("Give a time between 1900 and 2200.") from None
        if not EARLIEST <= moment < LATEST:
            raise ma.ValidationError("Give a time between 1900 and 2200.")
        return moment

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is None:  # stored UTC without tzinfo (SQLite)
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class JSONBoolean(fields.Boolean):
    """A boolean in a JSON body: `true` or `false`, nothing else. marshmallow's Boolean also takes 0, 1, "yes",
    "on"..., which the OpenAPI document's `type: boolean` does not admit, so a client could not know they work and
    a fuzzer rightly calls their acceptance a schema violation. (A query string is text: its schemas keep
    fields.Boolean, which reads "true" and "false".)"""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error response."""

    class Meta:
        # RFC 9457 3.2: a problem type may add extension members (sync's `table` and `id`, a rate limit's
        # `retry_after`, ...), which clients ignore when they do not know them. Only dumped, never loaded: this is
        # what the OpenAPI document says of the body (additionalProperties: true), not a looser input.
        unknown = ma.INCLUDE

    type = fields.String(metadata={"description": "URI naming the kind of problem"})
    title = fields.String(metadata={"description": "HTTP status phrase"})
    status = fields.Integer()
    detail = fields.String(metadata={"description": "A sentence for humans"})
    code = fields.String(metadata={"description": "Stable machine-readable code, e.g. slot_taken"})
    request_id = fields.String(metadata={"description": "This request's id (also the X-Request-ID header): quote "
                                                        "it when reporting a problem"})
    errors = fields.Dict(
        keys=fields.String(), values=fields.Raw(),
        metadata={"description": "Validation messages per field (422 only)"},
    )
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(),
        metadata={"description": "Each dependency's state (GET /ready only)"},
    )


class PageQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


_page_schemas = {}


def page_of(item_schema):
    """The list envelope {items, page, per_page, total} around one item schema (one class per item schema)."""
    name = f"{item_schema.__name__.removesuffix('Schema').removesuffix('Out')}Page"
    if name not in _page_schemas:
        _page_schemas[name] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "page": fields.Integer(required=True),
                "per_page": fields.Integer(required=True),
                "total": fields.Integer(required=True),
            },
            name=name,
        )
    return _page_schemas[name]
