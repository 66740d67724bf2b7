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
