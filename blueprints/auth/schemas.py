from marshmallow import fields, validate

from pawmanity.core.errors import InvalidInput
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


# Multi-factor sign-in
SIX_DIGITS = validate.Regexp(r"^\d{6}$", error="Send the 6-digit code from your authenticator.")
Code = fields.String(validate=SIX_DIGITS, metadata={"example": "123456"})
RecoveryCodeField = fields.String(validate=validate.Length(min=1, max=64),
                                  metadata={"description": "One of your recovery codes, e.g. abcde-fghjk"})


def one_second_factor(data, *, required):
    """`code` or `recovery_code`, never both (and one of them when `required`). Checked in the views rather than by
    a schema validator, so the refusal has its own code (`second_factor_choice`) that the OpenAPI document lists:
    a client sending schema-valid JSON is never told only `validation_failed`."""
    if ("code" in data and "recovery_code" in data) or (required and "code" not in data
                                                         and "recovery_code" not in data):
        raise InvalidInput("Send either `code` or `recovery_code`.", code="second_factor_choice",
                           errors={"_schema": ["Send either `code` or `recovery_code`."]})


class MfaChallengeOut(Schema):
    mfa_required = fields.Boolean(required=True, metadata={"example": True})
    challenge_token = fields.String(required=True, metadata={
        "description": "Send it with a code to POST /auth/login/mfa; it is not an access token"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the challenge is valid"})
    methods = fields.List(fields.String(), required=True, metadata={"example": ["totp", "recovery_code"]})


class MfaLoginIn(Schema):
    challenge_token = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    code = Code
    recovery_code = RecoveryCodeField



class ReauthenticateIn(Schema):
    password = Password
    code = Code
    recovery_code = RecoveryCodeField



class MfaCodeIn(Schema):
    code = fields.String(required=True, validate=SIX_DIGITS, metadata={"example": "123456"})


class MfaStatusOut(Schema):
    enabled = fields.Boolean(required=True)
    confirmed_at = UTCDateTime(allow_none=True)
    recovery_codes_remaining = fields.Integer(required=True)
    required = fields.Boolean(required=True, metadata={"description": "Whether this deployment requires MFA of "
                                                                      "your role"})


class TotpEnrolmentOut(Schema):
    secret = fields.String(required=True, metadata={"description": "Base32, for typing into an authenticator app"})
    otpauth_uri = fields.String(required=True, metadata={
        "description": "otpauth://totp/... (the Key Uri Format authenticator apps read from a QR code)"})
    digits = fields.Integer(required=True)
    period = fields.Integer(required=True)
    algorithm = fields.String(required=True)


class RecoveryCodesOut(Schema):
    recovery_codes = fields.List(fields.String(), required=True, metadata={
        "description": "Ten single-use codes, shown this once: keep them somewhere safe"})


class MfaEnabledOut(RecoveryCodesOut):
    tokens = fields.Nested(TokenPairOut, required=True, metadata={
        "description": "A token pair for this session that counts the second factor"})
