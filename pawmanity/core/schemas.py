"""Shared marshmallow building blocks: strict input, UTC output, the problem body, pages."""

from datetime import datetime, timezone

import marshmallow as ma
from marshmallow import fields, validate


class Schema(ma.Schema):
    """Unknown fields are refused, never silently dropped; no string may carry a NUL character (PostgreSQL text
    cannot store one, and no honest client sends one)."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def refuse_nul(self, data, **kwargs):
        if _has_nul(data):
            raise ma.ValidationError("Text must not contain NUL characters.", "_schema")
        return data


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    if hasattr(value, "getlist"):  # query strings and forms
        return any(_has_nul(key) or _has_nul(value.getlist(key)) for key in value.keys())
    return False


EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc)


class UTCDateTime(fields.AwareDateTime):
    """Inputs must carry an offset (naive -> 422) and lie between 1900 and 2200; outputs are UTC with a trailing Z."""

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


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error response."""

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
