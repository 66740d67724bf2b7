from marshmallow import fields, validate

from pawmanity.care.models import GUARDIAN_RELATIONS, NEUTER_STATUSES, RECORD_KINDS, SEXES, SPECIES
from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime


def weight_field(**kwargs):
    return fields.Float(validate=validate.Range(min=0.001, max=5000),
                        metadata={"description": "Kilograms, from one gram (kept to the gram)"}, **kwargs)


class PatientIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    species = fields.String(required=True, validate=validate.OneOf(SPECIES))
    breed = fields.String(allow_none=True, validate=validate.Length(max=120))
    sex = fields.String(load_default="unknown", validate=validate.OneOf(SEXES),
                        metadata={"description": "female_spayed and male_neutered are for animals"})
    date_of_birth = fields.Date(allow_none=True)
    microchip_id = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{9,15}$"),
                                 metadata={"description": "Animals only, e.g. a 15-digit ISO 11784 number"})
    weight_kg = weight_field()
    relation = fields.String(validate=validate.OneOf([r for r in GUARDIAN_RELATIONS if r != "self"]),
                             metadata={"description": "How you relate to the patient (default owner / guardian)"})

    # patients._check_profile's rule for people, stated: no neuter status, no microchip. (A change is checked
    # against the stored species, which no schema can see: there it is 422 `not_for_people`.)
    OPENAPI = {"anyOf": [{"properties": {"species": {"not": {"enum": ["human"]}}}},
                         {"properties": {"sex": {"not": {"enum": list(NEUTER_STATUSES)}},
                                         "microchip_id": {"not": {"type": "string"}}}}]}


class PatientPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    breed = fields.String(allow_none=True, validate=validate.Length(max=120))
    sex = fields.String(validate=validate.OneOf(SEXES))
    date_of_birth = fields.Date(allow_none=True)
    microchip_id = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{9,15}$"))
    weight_kg = weight_field()


class PatientOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    species = fields.String(required=True)
    breed = fields.String(allow_none=True)
    sex = fields.String(required=True)
    date_of_birth = fields.Date(allow_none=True)
    microchip_id = fields.String(allow_none=True)
    weight_kg = fields.Float(allow_none=True)
    version = fields.Integer(required=True)
    archived_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)


class PatientListQuery(PageQuery):
    species = fields.String(validate=validate.OneOf(SPECIES))
    microchip_id = fields.String(validate=validate.Regexp(r"^[0-9A-Za-z]{9,15}$"),
                                 metadata={"description": "Exact microchip number (case-insensitive)."})


class WeightIn(Schema):
    weight_kg = weight_field(required=True)
    measured_at = UTCDateTime(required=True)


class WeightOut(Schema):
    weight_kg = fields.Float(required=True)
    measured_at = UTCDateTime(required=True)
    recorded_by = fields.String(allow_none=True)


class GuardianOut(Schema):
    user_id = fields.String(required=True)
    full_name = fields.String(required=True)
    email = fields.String(required=True)
    relation = fields.String(required=True)
    is_primary = fields.Boolean(required=True)
    since = UTCDateTime(required=True)


class InvitationIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    relation = fields.String(load_default="family", validate=validate.OneOf(
        [r for r in GUARDIAN_RELATIONS if r != "self"]))


class InvitationOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    email = fields.String(required=True)
    relation = fields.String(required=True)
    expires_at = UTCDateTime(required=True)


class AcceptInvitationIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class RecordIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(RECORD_KINDS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    details = fields.String(allow_none=True, validate=validate.Length(max=20000))
    recorded_at = UTCDateTime(required=True)


class RecordPatch(Schema):
    kind = fields.String(validate=validate.OneOf(RECORD_KINDS))
    title = fields.String(validate=validate.Length(min=1, max=200))
    details = fields.String(allow_none=True, validate=validate.Length(max=20000))
    recorded_at = UTCDateTime()


class RecordOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    details = fields.String(allow_none=True)
    recorded_at = UTCDateTime(required=True)
    version = fields.Integer(required=True)
    created_by = fields.String(allow_none=True)
    updated_by = fields.String(allow_none=True)
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)


class RecordVersionOut(Schema):
    version = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    details = fields.String(allow_none=True)
    recorded_at = UTCDateTime(required=True)
    changed_by = fields.String(allow_none=True)
    changed_at = UTCDateTime(required=True)


class RecordListQuery(PageQuery):
    kind = fields.String(validate=validate.OneOf(RECORD_KINDS))
