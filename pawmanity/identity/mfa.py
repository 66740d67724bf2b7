"""Multi-factor sign-in: TOTP (RFC 6238, 6 digits, 30-second steps, SHA-1 as every authenticator app speaks) with
pyotp, and ten single-use recovery codes.

- Enrolment: a new secret and its otpauth:// URI (what a QR code encodes), confirmed by a first code; the
  confirmation issues the recovery codes (shown once, stored as argon2id hashes like passwords).
- Sign-in: a right password for an account with MFA gives a challenge token (signed, 5 minutes, single-use; not an
  access token), exchanged with a code for the token pair.
- A code is accepted once: the step it was accepted for is stored and no code of that step or an earlier one is
  accepted again. One step of clock drift either way is tolerated. Wrong codes count against a per-account limit.
- When the deployment requires MFA for some roles (MFA_REQUIRED, MFA_REQUIRED_ROLES), a token of such an account
  without "otp" in its `amr` claim works only on the views marked `mfa_exempt` (enrolment, sign-out, refresh, me).
- Turning MFA off and making new recovery codes need a recent authentication (`auth_time`, REAUTH_MAX_AGE_MINUTES).
"""

import hmac
import re
import secrets
import time
import uuid
from datetime import timedelta

import pyotp
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select

from pawmanity.audit import trail
from pawmanity.core import ratelimits
from pawmanity.core.database import utcnow
from pawmanity.core.errors import Conflict, DomainError, Unauthorized
from pawmanity.core.extensions import db
from pawmanity.identity import passwords, tokens
from pawmanity.identity.models import RecoveryCode, TotpFactor, User

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_CODE_LENGTH = 10  # about 50 bits each
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation
CHALLENGE_SALT = "pawmanity.mfa-challenge"


class ReauthenticationRequired(DomainError):
    """RFC 9470's step-up answer: the token is fine, but the authentication behind it is too old for this."""

    status, code = 401, "reauthentication_required"


# -- the rules -------------------------------------------------------------------------------------------------------


def required_for(user):
    config = current_app.config
    return bool(config["MFA_REQUIRED"]) and user.role in config["MFA_REQUIRED_ROLES"]


def second_factor_missing(user, claims):
    """True when this deployment requires MFA of the user's role (as the database says now) and the token was not
    obtained with a second factor."""
    return required_for(user) and "otp" not in (claims.get("amr") or ())


def require_recent_authentication(claims):
    max_age = current_app.config["REAUTH_MAX_AGE_MINUTES"] * 60
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or time.time() - auth_time > max_age:
        raise ReauthenticationRequired(
            f"Confirm it is you: sign in again or POST /auth/reauthenticate (within {max_age // 60} minutes).",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_user_authentication", '
                                         f'error_description="A more recent authentication is required", '
                                         f'max_age={max_age}'},
            extra={"max_age": max_age})


def amr_after_second_factor(claims):
    return sorted(set(claims.get("amr") or ("pwd",)) | {"otp"})


# -- TOTP ------------------------------------------------------------------------------------------------------------


def matching_step(secret, code, *, at, last_used_step=None):
    """The time-step (RFC 6238's T) whose code `code` is, within the drift allowed around `at` (Unix seconds), if
    it is later than `last_used_step`; else None. Pure, so the RFC's test vectors can drive it."""
    if not isinstance(code, str) or not re.fullmatch(rf"\d{{{DIGITS}}}", code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(at) // STEP_SECONDS
    for step in range(max(0, current - DRIFT_STEPS), current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step if last_used_step is None or step > last_used_step else None
    return None


def status(user):
    factor = db.session.get(TotpFactor, user.id)
    enabled = factor is not None and factor.confirmed_at is not None
    remaining = db.session.scalar(select(db.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) if enabled else 0
    return {"enabled": enabled, "confirmed_at": factor.confirmed_at if enabled else None,
            "recovery_codes_remaining": remaining, "required": required_for(user)}


def is_enabled(user_id):
    return db.session.scalar(select(TotpFactor.user_id).where(TotpFactor.user_id == user_id,
                                                              TotpFactor.confirmed_at.is_not(None))) is not None


def begin_enrolment(user, claims, actor):
    """A fresh secret for the user's authenticator app. Replaces an unconfirmed one; refused once MFA is on."""
    require_recent_authentication(claims)
    factor = db.session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id).with_for_update())
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("MFA is already on; turn it off first to enrol another authenticator.",
                       code="mfa_already_enabled")
    secret = pyotp.random_base32(length=SECRET_BYTES * 8 // 5)
    if factor is None:
        factor = TotpFactor(user_id=user.id, secret=secret)
        db.session.add(factor)
    else:
        factor.secret, factor.created_at, factor.last_used_step = secret, utcnow(), None
    trail.record("mfa.enrol", actor, object_type="user", object_id=user.id)
    db.session.commit()
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=current_app.config["MFA_ISSUER"])
    return {"secret": secret, "otpauth_uri": uri, "digits": DIGITS, "period": STEP_SECONDS, "algorithm": "SHA1"}


def confirm_enrolment(user, code, claims, actor):
    """The first code turns MFA on: returns the recovery codes (shown this once) and a token pair for this session
    that counts the second factor."""
    factor = db.session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id).with_for_update())
    if factor is None or factor.confirmed_at is not None:
        raise Conflict("There is no enrolment waiting for a code; start one with POST /auth/mfa/totp.",
                       code="mfa_not_enrolling")
    ratelimits.check("mfa_code", user.id)
    step = matching_step(factor.secret, code, at=time.time(), last_used_step=factor.last_used_step)
    if step is None:
        _wrong_code(user, actor, "mfa.enable")
    factor.confirmed_at, factor.last_used_step = utcnow(), step
    codes = _replace_recovery_codes(user.id)
    trail.record("mfa.enable", actor, object_type="user", object_id=user.id)
    pair = tokens.reissue(user, claims, amr=amr_after_second_factor(claims), authenticated_now=False)
    db.session.commit()
    return {"recovery_codes": codes, "tokens": pair}


def disable(user, claims, actor):
    require_recent_authentication(claims)
    if required_for(user):
        raise Conflict("Your role must sign in with MFA on this deployment.", code="mfa_required_for_role")
    if db.session.get(TotpFactor, user.id) is None:
        raise Conflict("MFA is not on.", code="mfa_not_enabled")
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    trail.record("mfa.disable", actor, object_type="user", object_id=user.id)
    db.session.commit()


def regenerate_recovery_codes(user, claims, actor):
    require_recent_authentication(claims)
    if not is_enabled(user.id):
        raise Conflict("MFA is not on.", code="mfa_not_enabled")
    codes = _replace_recovery_codes(user.id)
    trail.record("mfa.recovery_codes", actor, object_type="user", object_id=user.id)
    db.session.commit()
    return {"recovery_codes": codes}


def _replace_recovery_codes(user_id):
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=passwords.hash_password(code)) for code in codes)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


# -- the second factor at sign-in and re-authentication --------------------------------------------------------------


def verify_second_factor(user, actor, *, code=None, recovery_code=None, action="auth.login"):
    """Accept a TOTP code or an unused recovery code of the user (each once), or raise 401 `invalid_mfa_code`.
    Returns the method used. Wrong attempts count against the account's MFA_CODE_RATE_LIMIT."""
    ratelimits.check("mfa_code", user.id)
    if code is not None:
        factor = db.session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id,
                                                            TotpFactor.confirmed_at.is_not(None)).with_for_update())
        step = None if factor is None else matching_step(factor.secret, code, at=time.time(),
                                                         last_used_step=factor.last_used_step)
        if step is not None:
            factor.last_used_step = step
            return "totp"
    elif recovery_code is not None:
        wanted = re.sub(r"[\s-]", "", recovery_code).lower()
        unused = db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                               RecoveryCode.used_at.is_(None))
                                    .with_for_update()).all()
        for candidate in unused:
            if passwords.verify_password(candidate.code_hash, wanted):
                candidate.used_at = utcnow()
                return "recovery_code"
    _wrong_code(user, actor, action)


def _wrong_code(user, actor, action):
    ratelimits.spend("mfa_code", user.id)
    db.session.rollback()  # nothing half-done stays; the failure is recorded on its own
    trail.record(action, actor, object_type="user", object_id=user.id, outcome=trail.FAILURE,
                 detail={"reason": "wrong_mfa_code"})
    db.session.commit()
    raise Unauthorized("The authentication code is not valid (or was used already).", code="invalid_mfa_code")


def issue_challenge(user):
    """The sign-in challenge: who passed the password, signed and short-lived. Not a JWT, so no view takes it for an
    access token."""
    token = _challenges().dumps({"sub": str(user.id), "nonce": uuid.uuid4().hex,
                                 "pwd": int(user.password_changed_at.timestamp())})
    return {"mfa_required": True, "challenge_token": token,
            "expires_in": current_app.config["MFA_CHALLENGE_SECONDS"], "methods": ["totp", "recovery_code"]}


def complete_sign_in(challenge_token, actor, *, code=None, recovery_code=None):
    """Exchange a challenge and a code for a new session's token pair (amr pwd + otp). A challenge works once."""
    max_age = current_app.config["MFA_CHALLENGE_SECONDS"]
    try:
        content = _challenges().loads(challenge_token, max_age=max_age)
        user = db.session.get(User, uuid.UUID(content["sub"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise Unauthorized("The sign-in challenge is not valid or has expired; sign in again.",
                           code="invalid_challenge") from None
    key = f"mfa:{content.get('nonce')}"
    if user is None or not user.active or int(user.password_changed_at.timestamp()) != content.get("pwd") \
            or tokens.is_key_revoked(key):
        raise Unauthorized("The sign-in challenge is not valid or has expired; sign in again.",
                           code="invalid_challenge")
    user_actor = actor.acting_as(user)
    method = verify_second_factor(user, user_actor, code=code, recovery_code=recovery_code)
    tokens.blocklist_add(key, utcnow() + timedelta(seconds=max_age))
    user.last_login_at = utcnow()
    pair = tokens.issue_session(user, actor, amr=("otp", "pwd"))
    trail.record("auth.login", user_actor, object_type="user", object_id=user.id, detail={"mfa": method})
    db.session.commit()
    return pair


def _challenges():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CHALLENGE_SALT)
