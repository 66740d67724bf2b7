from marshmallow import fields, validate

from pawmanity.care.models import SPECIES
from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime
from pawmanity.vitals.models import DIRECTIONS
from pawmanity.vitals.readings import BUCKETS, MAX_BATCH
from pawmanity.vitals.units import MEASUREMENTS

SAMPLE_ID = validate.Regexp(r"^[A-Za-z0-9_.:-]{1,64}$", error="1 to 64 letters, digits, _ . : -")


class ReadingIn(Schema):
    sample_id = fields.String(required=True, validate=SAMPLE_ID,
                              metadata={"description": "The client's id for this sample; sending it again upserts"})
    measurement = fields.String(required=True, validate=validate.Length(min=1, max=24),
                                metadata={"description": f"One of {', '.join(MEASUREMENTS)}, or its LOINC code"})
    value = fields.Float(required=True, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=16),
                         metadata={"description": "UCUM, e.g. /min, mm[Hg], Cel, [degF], %, mg/dL, mmol/L, kg"})
    taken_at = UTCDateTime(required=True)
    version = fields.Integer(load_default=1, validate=validate.Range(min=1, max=2_000_000_000),
                             metadata={"description": "A higher version replaces a stored sample"})


class SingleReadingIn(ReadingIn):
    sample_id = fields.String(validate=SAMPLE_ID)


class BatchIn(Schema):
    patient_id = fields.UUID(metadata={"description": "Required for users; a device may only name its own patient"})
    readings = fields.List(fields.Nested(ReadingIn), required=True,
                           validate=validate.Length(min=1, max=MAX_BATCH))


class ItemError(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    detail = fields.String(required=True)


class ItemResult(Schema):
    index = fields.Integer(required=True)
    sample_id = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "created, updated, duplicate (same version again), stale (a higher version is stored), "
                       "superseded (a higher version came in the same batch) or rejected"})
    detail = fields.String()
    error = fields.Nested(ItemError)


class BatchOut(Schema):
    patient_id = fields.String(required=True)
    results = fields.List(fields.Nested(ItemResult), required=True)


class ObservationOut(Schema):
    id = fields.Integer(required=True)
    patient_id = fields.String(required=True)
    measurement = fields.String(required=True)
    loinc = fields.String(required=True)
    value = fields.Float(required=True)
    unit = fields.String(required=True, metadata={"description": "Canonical UCUM unit"})
    taken_at = UTCDateTime(required=True)
    source_kind = fields.String(required=True)
    source_id = fields.String(required=True)
    sample_id = fields.String(required=True)
    version = fields.Integer(required=True)


class WindowQuery(PageQuery):
    patient_id = fields.UUID(required=True)
    measurement = fields.String(required=True, validate=validate.Length(min=1, max=24))
    start = UTCDateTime(required=True, data_key="from")
    end = UTCDateTime(required=True, data_key="to")
    bucket = fields.String(validate=validate.OneOf(BUCKETS),
                           metadata={"description": "Downsample: min, max, mean, count per bucket"})


class SeriesQuery(Schema):
    patient_id = fields.UUID(required=True)
    measurement = fields.String(required=True, validate=validate.Length(min=1, max=24))
    start = UTCDateTime(required=True, data_key="from")
    end = UTCDateTime(required=True, data_key="to")
    bucket = fields.String(required=True, validate=validate.OneOf(BUCKETS))


class BucketOut(Schema):
    start = UTCDateTime(required=True)
    min = fields.Float(required=True)
    max = fields.Float(required=True)
    mean = fields.Float(required=True)
    count = fields.Integer(required=True)


class BucketList(fields.List):
    """A list of BucketOut (and documented as one), written without a schema dump per point: a year by hour is 8,760
    points, and dumping each through BucketOut took most of the answer's time once the rollups made the query fast.
    A test checks that it writes exactly what BucketOut would."""

    _start = UTCDateTime()

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(BucketOut), **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        start = self._start._serialize
        return [{"start": start(point["start"], "start", point), "min": float(point["min"]),
                 "max": float(point["max"]), "mean": float(point["mean"]), "count": int(point["count"])}
                for point in value]


class SeriesOut(Schema):
    patient_id = fields.String(required=True)
    measurement = fields.String(required=True)
    loinc = fields.String(required=True)
    unit = fields.String(required=True)
    bucket = fields.String(required=True)
    points = BucketList(required=True)


class DeviceIn(Schema):
    patient_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))


class DeviceOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    name = fields.String(required=True)
    created_at = UTCDateTime(required=True)
    revoked_at = UTCDateTime(allow_none=True)
    last_seen_at = UTCDateTime(allow_none=True)


class DeviceCreatedOut(DeviceOut):
    token = fields.String(required=True, metadata={"description": "Shown once; send it as X-Device-Token"})


class DeviceQuery(PageQuery):
    patient_id = fields.UUID(required=True)


class AlertRuleIn(Schema):
    species = fields.String(validate=validate.OneOf(SPECIES))
    patient_id = fields.UUID()
    measurement = fields.String(required=True, validate=validate.OneOf(MEASUREMENTS))
    direction = fields.String(required=True, validate=validate.OneOf(DIRECTIONS))
    threshold = fields.Float(required=True, allow_nan=False)
    clear_threshold = fields.Float(required=True, allow_nan=False,
                                   metadata={"description": "Resolves once a reading is back past this (hysteresis)"})
    min_duration_seconds = fields.Integer(load_default=0, validate=validate.Range(min=0, max=7 * 86400))

    # A species-wide rule or one patient's override, never both (alerts.create_rule refuses either way).
    OPENAPI = {"oneOf": [{"required": ["species"]}, {"required": ["patient_id"]}]}


class AlertRulePatch(Schema):
    threshold = fields.Float(allow_nan=False)
    clear_threshold = fields.Float(allow_nan=False)
    min_duration_seconds = fields.Integer(validate=validate.Range(min=0, max=7 * 86400))


class AlertRuleOut(Schema):
    id = fields.String(required=True)
    species = fields.String(allow_none=True)
    patient_id = fields.String(allow_none=True)
    measurement = fields.String(required=True)
    direction = fields.String(required=True)
    threshold = fields.Float(required=True)
    clear_threshold = fields.Float(required=True)
    min_duration_seconds = fields.Integer(required=True)


class AlertRuleQuery(PageQuery):
    patient_id = fields.UUID()
    species = fields.String(validate=validate.OneOf(SPECIES))


class AlertQuery(PageQuery):
    patient_id = fields.UUID(required=True)
    status = fields.String(validate=validate.OneOf(("open", "resolved")))


class AlertOut(Schema):
    id = fields.String(required=True)
    rule_id = fields.String(required=True)
    patient_id = fields.String(required=True)
    measurement = fields.String(required=True)
    direction = fields.String(required=True)
    threshold = fields.Float(required=True)
    status = fields.String(required=True)
    opened_at = UTCDateTime(required=True)
    opening_value = fields.Float(required=True)
    resolved_at = UTCDateTime(allow_none=True)
    acknowledged_at = UTCDateTime(allow_none=True)


