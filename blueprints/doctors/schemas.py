import re

from marshmallow import ValidationError, fields, validate

from pawmanity.care.models import SPECIES
from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime

CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class ClockTime(fields.String):
    """"HH:MM" on the doctor's wall clock, as minutes after midnight ("24:00" ends a day)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not CLOCK.match(text):
            raise ValidationError('Use 24-hour "HH:MM", e.g. "09:00".')
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value // 60:02d}:{value % 60:02d}"


class DoctorProfileIn(Schema):
    specialty = fields.String(required=True, validate=validate.Length(min=2, max=64),
                              metadata={"description": "e.g. dermatology, general_practice, cardiology"})
    species_treated = fields.List(fields.String(validate=validate.OneOf(SPECIES)), required=True,
                                  validate=validate.Length(min=1, max=len(SPECIES)))
    license_number = fields.String(required=True, validate=validate.Length(min=3, max=64))
    bio = fields.String(allow_none=True, validate=validate.Length(max=4000))
    timezone = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"description": "IANA timezone of the doctor's working hours"})


class RuleSchema(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(min=0, max=6),
                             metadata={"description": "0 = Monday ... 6 = Sunday"})
    start = ClockTime(required=True, attribute="start_minute", data_key="start", metadata={"example": "09:00"})
    end = ClockTime(required=True, attribute="end_minute", data_key="end", metadata={"example": "17:00"})


class RuleIn(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(min=0, max=6))
    start = ClockTime(required=True, metadata={"example": "09:00"})
    end = ClockTime(required=True, metadata={"example": "17:00"})


class AvailabilityIn(Schema):
    rules = fields.List(fields.Nested(RuleIn), required=True, validate=validate.Length(max=50))
    slot_minutes = fields.Integer(load_default=30, validate=validate.Range(min=5, max=240))
    buffer_minutes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=120))


class DoctorOut(Schema):
    id = fields.String(required=True)
    full_name = fields.Function(lambda profile: profile.user.full_name, required=True)
    specialty = fields.String(required=True)
    species_treated = fields.List(fields.String(), required=True)
    license_number = fields.String(required=True)
    bio = fields.String(allow_none=True)
    timezone = fields.String(required=True)
    slot_minutes = fields.Integer(required=True)
    buffer_minutes = fields.Integer(required=True)
    verified = fields.Boolean(required=True)
    rules = fields.List(fields.Nested(RuleSchema), required=True)


class DoctorListQuery(PageQuery):
    specialty = fields.String(validate=validate.Length(min=1, max=64))
    species = fields.String(validate=validate.OneOf(SPECIES))


class TimeOffIn(Schema):
    start = UTCDateTime(required=True)
    end = UTCDateTime(required=True)
    reason = fields.String(allow_none=True, validate=validate.Length(max=200))


class TimeOffOut(Schema):
    id = fields.String(required=True)
    start = UTCDateTime(required=True, attribute="start_at")
    end = UTCDateTime(required=True, attribute="end_at")
    reason = fields.String(allow_none=True)


class SlotQuery(PageQuery):
    start = UTCDateTime(data_key="from", metadata={"description": "Default: now"})
    end = UTCDateTime(data_key="to", metadata={"description": "Default: 7 days after from; at most 31 days"})


class SlotOut(Schema):
    start = UTCDateTime(required=True)
    end = UTCDateTime(required=True)

