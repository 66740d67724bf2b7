from marshmallow import fields, validate

from pawmanity.models import SPECIES
from pawmanity.schemas import Schema


class SpeciesQuery(Schema):
    species = fields.String(required=True, validate=validate.OneOf(SPECIES))


class SymptomOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ConditionOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    urgency = fields.Integer(required=True, metadata={"description": "1 self-care ... 5 emergency now"})
    urgency_label = fields.String(required=True)
    specialist = fields.String(required=True)
    sources = fields.List(fields.String(), required=True)


class CatalogueOut(Schema):
    species = fields.String(required=True)
    knowledge_base_version = fields.String(required=True)


class SymptomListOut(CatalogueOut):
    items = fields.List(fields.Nested(SymptomOut), required=True)


class ConditionListOut(CatalogueOut):
    items = fields.List(fields.Nested(ConditionOut), required=True)


class ModelOut(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    created_at = fields.String(required=True)
    knowledge_base_version = fields.String(required=True)
    training = fields.Dict(required=True, metadata={"description": "cases per species, seed, hold-out share, "
                                                                   "SHA-256 of each species' training data"})
    metrics = fields.Dict(required=True, metadata={"description": "held-out top-1/top-3 accuracy and urgency "
                                                                  "recall per level, per species"})
