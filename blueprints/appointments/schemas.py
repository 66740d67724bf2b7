from marshmallow import ValidationError, fields, validate, validates_schema

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime
from pawmanity.scheduling.models import APPOINTMENT_STATUSES, APPOINTMENT_TYPES


class BookIn(Schema):
    doctor_id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    start = UTCDateTime(required=True, metadata={"description": "A free slot's start, with an offset"})
    type = fields.String(required=True, validate=validate.OneOf(APPOINTMENT_TYPES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class BookEarliestIn(Schema):
    doctor_id = fields.UUID()
    specialty = fields.String(validate=validate.Length(min=1, max=64))
    patient_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(APPOINTMENT_TYPES))
    after = UTCDateTime(metadata={"description": "Search from this time (default: now)"})
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))

    OPENAPI = {"oneOf": [{"required": ["doctor_id"]}, {"required": ["specialty"]}]}

    @validates_schema
    def one_target(self, data, **kwargs):
        if ("doctor_id" in data) == ("specialty" in data):
            raise ValidationError("Send either doctor_id or specialty.", "_schema")


class CancelIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RescheduleIn(Schema):
    start = UTCDateTime(required=True)


class AppointmentEventOut(Schema):
    at = UTCDateTime(required=True)
    actor_id = fields.String(allow_none=True)
    action = fields.String(required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    from_start = UTCDateTime(allow_none=True, attribute="from_start_at")
    to_start = UTCDateTime(allow_none=True, attribute="to_start_at")
    note = fields.String(allow_none=True)


class AppointmentOut(Schema):
    id = fields.String(required=True)
    doctor_id = fields.String(required=True)
    patient_id = fields.String(required=True)
    booked_by = fields.String(required=True)
    start = UTCDateTime(required=True, attribute="start_at")
    end = UTCDateTime(required=True, attribute="end_at")
    type = fields.String(required=True)
    reason = fields.String(allow_none=True)
    status = fields.String(required=True)
    cancelled_at = UTCDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    late_cancellation = fields.Boolean(required=True)
    created_at = UTCDateTime(required=True)
    history = fields.List(fields.Nested(AppointmentEventOut), attribute="events", required=True)


class AppointmentListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(APPOINTMENT_STATUSES))
    since = UTCDateTime(data_key="from")
    until = UTCDateTime(data_key="to")


class CalendarFeedOut(Schema):
    url = fields.String(required=True, metadata={"description": "Subscribe to this URL; it is shown only now"})
    created_at = UTCDateTime(required=True)
