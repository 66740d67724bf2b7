from marshmallow import ValidationError, fields, validate, validates_schema

from pawmanity.core.schemas import JSONBoolean, PageQuery, Schema, UTCDateTime
from pawmanity.webhooks.events import EVENT_TYPES
from pawmanity.webhooks.models import DELIVERY_STATUSES


def events_field(**kwargs):
    return fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), validate=validate.Length(min=1, max=20),
                       metadata={"description": f"Any of: {', '.join(EVENT_TYPES)}"}, **kwargs)


def url_field(**kwargs):
    return fields.String(validate=validate.Length(min=1, max=2000),
                         metadata={"description": "http(s) URL of a public address (or an allow-listed network), "
                                                  "without credentials"}, **kwargs)


class EndpointIn(Schema):
    url = url_field(required=True)
    events = events_field(required=True)
    description = fields.String(validate=validate.Length(max=200), allow_none=True)


class EndpointUpdateIn(Schema):
    url = url_field()
    events = events_field()
    description = fields.String(validate=validate.Length(max=200), allow_none=True)
    active = JSONBoolean(metadata={"description": "false pauses deliveries; true re-enables a disabled endpoint"})

    OPENAPI = {"minProperties": 1}  # not_empty, as the document states it

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Send at least one field.")


class EndpointOut(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    description = fields.String(allow_none=True)
    events = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True, metadata={"description": "gone (410), failure_streak, admin"})
    disabled_at = UTCDateTime(allow_none=True)
    failure_streak = fields.Integer(required=True)
    created_at = UTCDateTime(required=True)


class EndpointCreatedOut(EndpointOut):
    secret = fields.String(required=True, metadata={"description": "The signing secret (Standard Webhooks "
                                                                   "whsec_...). Shown this once only."})


class AttemptOut(Schema):
    at = UTCDateTime(required=True)
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer(required=True)


class DeliveryOut(Schema):
    id = fields.String(required=True)
    message_id = fields.String(required=True, metadata={"description": "The webhook-id header"})
    event_type = fields.String(required=True, attribute="message.event_type")
    payload = fields.Dict(required=True, attribute="message.payload")
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime(required=True)
    attempt_log = fields.List(fields.Nested(AttemptOut), required=True)


class DeliveryQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
