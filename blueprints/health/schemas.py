from marshmallow import fields

from pawmanity.core.schemas import Schema


class HealthOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadyOut(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "Each dependency: ok, or what failed"})
