from marshmallow import fields, validate

from pawmanity.core.schemas import Schema, UTCDateTime
from pawmanity.identity.models import SELF_SERVICE_ROLES
from pawmanity.scheduling import doctors

# Generous caps stop absurd bodies early; the password policy (8..128) is the service's to explain.
Password = fields.String(required=True, validate=validate.Length(min=1, max=1024), load_only=True)
# New passwords: the length rule is in the schema (and so in the OpenAPI document); the rest is the policy's.
NewPassword = fields.String(required=True, validate=validate.Length(min=8, max=128), load_only=True)


class RegisterIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = NewPassword
    full_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(SELF_SERVICE_ROLES))
    timezone = fields.String(load_default="UTC", validate=validate.Length(max=64),
                             metadata={"description": "IANA timezone name, e.g. Europe/Paris"})


class LoginIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = Password


class TokenPairOut(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds"})


class UserOut(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    full_name = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    timezone = fields.String(required=True)
    created_at = UTCDateTime(required=True)
    last_login_at = UTCDateTime(allow_none=True)
    doctor_id = fields.Function(lambda user: _doctor_id(user), allow_none=True,
                                metadata={"description": "For doctors: the id of their doctor profile"})


def _doctor_id(user):
    profile_id = doctors.profile_id_for(user)
    return str(profile_id) if profile_id else None


class MeUpdateIn(Schema):
    full_name = fields.String(validate=validate.Length(min=1, max=200))
    timezone = fields.String(validate=validate.Length(min=1, max=64))
    current_password = fields.String(validate=validate.Length(max=1024), load_only=True)
    new_password = fields.String(validate=validate.Length(min=8, max=128), load_only=True)
