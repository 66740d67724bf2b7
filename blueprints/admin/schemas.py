from marshmallow import ValidationError, fields, validate, validates_schema

from pawmanity.core.schemas import JSONBoolean, PageQuery, Schema, UTCDateTime
from pawmanity.identity import passwords
from pawmanity.identity.models import ROLES


class AdminUserOut(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    full_name = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    timezone = fields.String(required=True)
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)
    last_login_at = UTCDateTime(allow_none=True)


class UserListQuery(PageQuery):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean()
    q = fields.String(validate=validate.Length(min=1, max=100), metadata={"description": "Search e-mail and name"})


class AdminUserCreateIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    # The policy's length (8..128) is stated here, so the OpenAPI document carries it; the rest is the policy's.
    password = fields.String(required=True, validate=validate.Length(min=passwords.MIN_LENGTH, max=passwords.MAX_LENGTH),
                             load_only=True)
    full_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class AdminUserUpdateIn(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = JSONBoolean()

    OPENAPI = {"minProperties": 1}  # not_empty, as the document states it

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Send role, active or both.")


class AuditEventOut(Schema):
    id = fields.Integer(required=True)
    occurred_at = UTCDateTime(required=True)
    actor_id = fields.String(allow_none=True)
    actor_role = fields.String(allow_none=True)
    action = fields.String(required=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    outcome = fields.String(required=True)
    ip = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    # Null until the chainer seals the row (pawmanity/audit/trail.py), moments after its commit.
    chain_position = fields.Integer(required=True, allow_none=True,
                                    metadata={"description": "Place in the hash chain; null until sealed"})
    prev_hash = fields.String(required=True, allow_none=True)
    hash = fields.String(required=True, allow_none=True)


class AuditQuery(PageQuery):
    actor_id = fields.UUID()
    action = fields.String(validate=validate.Length(max=64))
    object_type = fields.String(validate=validate.Length(max=32))
    object_id = fields.String(validate=validate.Length(max=64))
    since = UTCDateTime(data_key="from")
    until = UTCDateTime(data_key="to")


class DoctorVerifiedOut(Schema):
    id = fields.String(required=True)
    user_id = fields.String(required=True)
    specialty = fields.String(required=True)
    license_number = fields.String(required=True)
    verified = fields.Boolean(required=True)
    verified_at = UTCDateTime(allow_none=True)
