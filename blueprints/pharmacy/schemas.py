import re

import marshmallow as ma
from marshmallow import fields, validate

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime
from pawmanity.pharmacy.models import MEDICINE_USES, RESERVATION_STATUSES

# [0-9], not \d (which takes any script's digits): the same pattern as the OpenAPI document's.
CLOCK_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
CLOCK = re.compile(CLOCK_PATTERN)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_OPENINGS_A_DAY = 4
# validate_hours as JSON Schema. That an opening closes after it opens is the service's refusal
# (`closes_before_opening`): JSON Schema cannot compare two items of an array.
OPENING_HOURS_SCHEMA = {
    "properties": {day: {"type": "array", "maxItems": MAX_OPENINGS_A_DAY, "items": {
        "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string", "pattern": CLOCK_PATTERN}}}
        for day in WEEKDAYS},
    "additionalProperties": False,
}


# `lat,lon` in decimal degrees within range, as the OpenAPI document tells clients (and Postman) to send it.
POSITION_PATTERN = (r"^-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?),"
                    r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)$")


class Position(fields.Field):
    """`lat,lon` in decimal degrees."""

    def __init__(self, **kwargs):
        metadata = {"type": "string", "pattern": POSITION_PATTERN, "example": "48.8566,2.3522",
                    **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parts = str(value).split(",")
        try:
            latitude, longitude = (float(part) for part in parts)
        except ValueError:
            raise ma.ValidationError("Give `lat,lon` in decimal degrees, e.g. 48.8566,2.3522.") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ma.ValidationError("Latitude must be within -90..90 and longitude within -180..180.")
        return latitude, longitude


def validate_hours(hours):
    for day, spans in hours.items():
        if day not in WEEKDAYS:
            raise ma.ValidationError(f"Days are {', '.join(WEEKDAYS)}.")
        if not isinstance(spans, list) or len(spans) > MAX_OPENINGS_A_DAY:
            raise ma.ValidationError(f"Each day is a list of at most {MAX_OPENINGS_A_DAY} [open, close] pairs.")
        for span in spans:
            if not isinstance(span, list) or len(span) != 2 or not all(isinstance(t, str) and CLOCK.match(t)
                                                                       for t in span):
                raise ma.ValidationError('Each opening is ["HH:MM", "HH:MM"].')


class PharmacyIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=160))
    address = fields.String(required=True, validate=validate.Length(min=1, max=500))
    # No value field: apispec would write it as additionalProperties over OPENING_HOURS_SCHEMA's.
    opening_hours = fields.Dict(keys=fields.String(), allow_none=True,
                                validate=validate_hours,
                                metadata={"description": 'e.g. {"mon": [["08:00", "19:00"]]}; an opening closes '
                                                         'after it opens', **OPENING_HOURS_SCHEMA})
    latitude = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(required=True, validate=validate.Range(min=-180, max=180))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))


class PharmacyPatch(PharmacyIn):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class PharmacyOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    address = fields.String(required=True)
    opening_hours = fields.Dict(allow_none=True)
    latitude = fields.Float(required=True)
    longitude = fields.Float(required=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class PharmacyHitOut(PharmacyOut):
    distance_km = fields.Float(allow_none=True, metadata={"description": "Great-circle distance from `near`"})
    available = fields.Integer(allow_none=True, metadata={"description": "Units of the medicine available now"})


class PharmacySearchQuery(PageQuery):
    medicine = fields.UUID(metadata={"description": "Only pharmacies where this medicine is available now"})
    near = Position(metadata={"description": "`lat,lon`: nearest first, with distance_km"})
    radius_km = fields.Float(validate=validate.Range(min=0.01, max=500),
                             metadata={"description": "Default 25; only with `near` (else 422 `radius_needs_near`)"})


class StaffIn(Schema):
    user_id = fields.UUID(required=True)


class StaffOut(Schema):
    id = fields.String(required=True)
    full_name = fields.String(required=True)
    email = fields.String(required=True)


class MedicineIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=160))
    strength = fields.String(required=True, validate=validate.Length(min=1, max=60))
    form = fields.String(required=True, validate=validate.Length(min=1, max=40))
    code = fields.String(allow_none=True, validate=validate.Regexp(r"^[A-Za-z0-9.:-]{1,32}$"),
                         metadata={"description": "ATC (e.g. QJ01CA04) or an RxNorm-style code"})
    use = fields.String(load_default="both", validate=validate.OneOf(MEDICINE_USES))


class MedicineOut(MedicineIn):
    id = fields.String(required=True)


class MedicineQuery(PageQuery):
    q = fields.String(validate=validate.Length(min=1, max=100))
    code = fields.String(validate=validate.Length(min=1, max=32))
    use = fields.String(validate=validate.OneOf(("human", "veterinary")))


class StockSettingIn(Schema):
    reorder_point = fields.Integer(required=True, validate=validate.Range(min=0, max=1_000_000))


class LotOut(Schema):
    id = fields.String(required=True)
    lot_number = fields.String(required=True)
    expires_on = fields.Date(required=True)
    remaining = fields.Integer(required=True)
    expired = fields.Boolean(required=True)


class StockItemOut(Schema):
    id = fields.String(required=True)
    medicine = fields.Nested(MedicineOut, required=True)
    on_hand = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    available = fields.Integer(required=True, metadata={"description": "on hand - reserved - expired units"})
    reorder_point = fields.Integer(required=True)
    lots = fields.List(fields.Nested(LotOut), required=True)


class MovementIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("receive", "adjust")))
    medicine_id = fields.UUID(required=True)
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    expires_on = fields.Date(metadata={"description": "Last day of use (receive)"})
    quantity = fields.Integer(required=True, validate=validate.Range(min=-1_000_000, max=1_000_000),
                              metadata={"description": "Units; negative only for adjust"})
    reason = fields.String(validate=validate.Length(max=200))
    idempotency_key = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{8,64}$"),
                                    metadata={"description": "The same key again replays the first answer"})


class MovementOut(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    stock_item_id = fields.String(required=True)
    lot_id = fields.String(allow_none=True)
    reservation_id = fields.String(allow_none=True)
    on_hand_delta = fields.Integer(required=True)
    reserved_delta = fields.Integer(required=True)
    idempotency_key = fields.String(required=True)
    reason = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    created_at = UTCDateTime(required=True)


class MovementQuery(PageQuery):
    medicine_id = fields.UUID()


class PrescriptionQuery(PageQuery):
    patient_id = fields.UUID(required=True)


class PrescriptionOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    consultation_id = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    medicine_id = fields.String(allow_none=True)
    medication = fields.String(required=True)
    quantity = fields.Integer(required=True)
    created_at = UTCDateTime(required=True)
    dispensed_at = UTCDateTime(allow_none=True)


class ReservationIn(Schema):
    pharmacy_id = fields.UUID(required=True)


class ReservationOut(Schema):
    id = fields.String(required=True)
    prescription_id = fields.String(required=True)
    pharmacy_id = fields.String(required=True)
    quantity = fields.Integer(required=True)
    status = fields.String(required=True)
    expires_at = UTCDateTime(required=True)
    created_at = UTCDateTime(required=True)
    closed_at = UTCDateTime(allow_none=True)


class ReservationQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(RESERVATION_STATUSES))
