from flask import current_app, jsonify, request
from flask_jwt_extended import get_current_user, get_jwt, jwt_required

from blueprints.auth.schemas import (
    LoginIn,
    MeUpdateIn,
    MfaChallengeOut,
    MfaCodeIn,
    MfaEnabledOut,
    MfaLoginIn,
    MfaStatusOut,
    ReauthenticateIn,
    RecoveryCodesOut,
    RegisterIn,
    TokenPairOut,
    TotpEnrolmentOut,
    UserOut,
    one_second_factor,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.ratelimits import rate_limited
from pawmanity.identity import accounts, mfa
from pawmanity.identity.security import current_actor, mfa_exempt

blp = Blueprint("auth", __name__, url_prefix=f"{API_PREFIX}/auth", description="Sign-up, sign-in and tokens")


def login_rate_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def register_rate_limit():
    return current_app.config["REGISTER_RATE_LIMIT"]


def login_email_key():
    # A second bucket per target account, so spreading a guessing attack over many addresses does not help.
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    # The address as accounts store it, so full-width or differently cased spellings share the bucket; keyed by its
    # blind index, so Redis holds no address either.
    return f"login-email:{accounts.email_lookup_index(str(email))}" if email else f"login-ip:{request.remote_addr}"


@blp.route("/register", methods=["POST"])
@rate_limited(register_rate_limit)  # per client address: each sign-up costs an argon2 hash and an e-mail
@blp.arguments(RegisterIn)
@blp.response(201, UserOut)
@blp.errors(409, 415, 429)
def register(data):
    """Create a patient or doctor account. Location names the account as its owner reads it once signed in."""
    return accounts.register(actor=current_actor(), **data), 201, {"Location": f"{API_PREFIX}/auth/me"}


@blp.route("/login", methods=["POST"])
@rate_limited(login_rate_limit)
@rate_limited(login_rate_limit, key_func=login_email_key)
@blp.arguments(LoginIn)
@blp.response(200, TokenPairOut)
@blp.alt_response(202, schema=MfaChallengeOut, description="The password was right and MFA is on for this account: "
                  "send the challenge with a code to POST /auth/login/mfa")
@blp.errors(401, 415, 429)
def login(data):
    """Exchange e-mail and password for an access token (15 minutes) and a refresh token, or, for an account
    with MFA, a challenge (202)."""
    result = accounts.authenticate(email=data["email"], password=data["password"], actor=current_actor())
    if result.get("mfa_required"):
        response = jsonify(MfaChallengeOut().dump(result))
        response.status_code = 202
        return response
    return result


@blp.route("/login/mfa", methods=["POST"])
@rate_limited(login_rate_limit)
@blp.arguments(MfaLoginIn)
@blp.response(200, TokenPairOut)
@blp.errors(401, 415, 429)
def login_mfa(data):
    """Finish signing in: the challenge from POST /auth/login and a code from your authenticator (or a recovery
    code). A code works once; wrong codes are limited per account."""
    return mfa.complete_sign_in(data["challenge_token"], current_actor(), code=data.get("code"),
                                recovery_code=data.get("recovery_code"))


@blp.route("/reauthenticate", methods=["POST"])
@mfa_exempt
@blp.auth_required()
@blp.arguments(ReauthenticateIn)
@blp.response(200, TokenPairOut)
@blp.errors(415, 429)
def reauthenticate(data):
    """Confirm it is you (password, and a code when MFA is on) before an action that needs a recent sign-in
    (turning MFA off, new recovery codes, a new password): a new token pair with a fresh `auth_time`."""
    one_second_factor(data, required=False)
    return accounts.reauthenticate(get_current_user(), get_jwt(), actor=current_actor(), **data)


@blp.route("/refresh", methods=["POST"])
@mfa_exempt
@jwt_required(refresh=True)
@blp.response(200, TokenPairOut)
@blp.doc(security=[{"bearerAuth": []}], description="Send the refresh token as the bearer token. "
         "It is single-use: a second use ends the whole session.")
@blp.errors(401)
def refresh():
    """Rotate the refresh token and get a new access token."""
    return accounts.refresh(get_jwt(), current_actor())


@blp.route("/logout", methods=["POST"])
@mfa_exempt
@blp.auth_required()
@blp.response(204)
def logout():
    """Revoke this access token and end its session."""
    accounts.logout(get_jwt(), current_actor())


@blp.route("/me", methods=["GET"])
@mfa_exempt
@blp.auth_required()
@blp.response(200, UserOut)
def me():
    """The signed-in account."""
    return get_current_user()


@blp.route("/me", methods=["PATCH"])
@blp.auth_required()
@blp.arguments(MeUpdateIn)
@blp.response(200, UserOut)
@blp.errors(415, 429)
def update_me(changes):
    """Change your name, timezone or password (the current password is required to change it, and a sign-in
    within the last minutes: else 401 `reauthentication_required`, see POST /auth/reauthenticate)."""
    return accounts.update_profile(get_current_user(), changes, current_actor(),
                                   current_session_id=get_jwt().get("sid"), claims=get_jwt())


@blp.route("/mfa", methods=["GET"])
@mfa_exempt
@blp.auth_required()
@blp.response(200, MfaStatusOut)
def mfa_status():
    """Whether MFA is on for you, required of your role, and how many recovery codes are left."""
    return mfa.status(get_current_user())


@blp.route("/mfa/totp", methods=["POST"])
@mfa_exempt
@blp.auth_required()
@blp.response(200, TotpEnrolmentOut)
@blp.errors(409)
def enrol_totp():
    """Start enrolling an authenticator app: its secret and otpauth:// URI (show it as a QR code). Needs a recent
    sign-in. MFA is on once a first code is confirmed."""
    return mfa.begin_enrolment(get_current_user(), get_jwt(), current_actor())


@blp.route("/mfa/totp/confirm", methods=["POST"])
@mfa_exempt
@blp.auth_required()
@blp.arguments(MfaCodeIn)
@blp.response(200, MfaEnabledOut)
@blp.errors(409, 415, 429)
def confirm_totp(data):
    """Turn MFA on with a first code: ten recovery codes (shown once) and a token pair that counts the factor."""
    return mfa.confirm_enrolment(get_current_user(), data["code"], get_jwt(), current_actor())


@blp.route("/mfa", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(409)
def disable_mfa():
    """Turn MFA off (needs a recent sign-in; refused where the deployment requires it of your role)."""
    mfa.disable(get_current_user(), get_jwt(), current_actor())


@blp.route("/mfa/recovery-codes", methods=["POST"])
@blp.auth_required()
@blp.response(200, RecoveryCodesOut)
@blp.errors(409)
def regenerate_recovery_codes():
    """Replace your recovery codes with ten new ones (needs a recent sign-in)."""
    return mfa.regenerate_recovery_codes(get_current_user(), get_jwt(), current_actor())
