"""Accounts: registration, sign-in, profile changes and administration. Each function commits its own work."""

from functools import cache
from zoneinfo import available_timezones

from blinker import Namespace
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from pawmanity.audit import trail
from pawmanity.core.database import utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from pawmanity.core.extensions import db
from pawmanity.identity import mfa, passwords, tokens
from pawmanity.identity.models import ROLES, SELF_SERVICE_ROLES, User

signals = Namespace()
# Sent inside the registration's transaction, after the user row exists and before the commit, so what a
# subscriber adds (care gives a new patient their own record) commits or rolls back with the account.
user_registered = signals.signal("user-registered")
# Sent inside a profile change that renamed the user, before the commit (a doctor's verification covers the name).
user_renamed = signals.signal("user-renamed")
from pawmanity.core import ratelimits
from pawmanity.identity.email_addresses import email_skeleton, lookup_email, normalize_email


def register(*, email, password, full_name, role, actor, timezone="UTC"):
    """Self-service sign-up: patients and doctors only; admins come from the CLI or another admin."""
    if role not in SELF_SERVICE_ROLES:
        raise Forbidden("Only patient and doctor accounts can be registered.", code="role_not_allowed")
    return _create_user(email=email, password=password, full_name=full_name, role=role, actor=actor,
                        timezone=timezone)


def create_user_as_admin(*, email, password, full_name, role, actor):
    return _create_user(email=email, password=password, full_name=full_name, role=role, actor=actor)


def _create_user(*, email, password, full_name, role, actor, timezone="UTC"):
    email = normalize_email(email)
    skeleton = email_skeleton(email)
    _check_password(password, email)
    check_timezone(timezone)
    _refuse_look_alike(email, skeleton)
    user = User(email=email, email_skeleton=skeleton, password_hash=passwords.hash_password(password),
                full_name=full_name.strip(), role=role, timezone=timezone)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent sign-up with the same address or a look-alike of it
        db.session.rollback()
        raise Conflict("An account with this e-mail address already exists.", code="email_taken") from None
    user_registered.send(user)
    trail.record("user.register", actor.acting_as(user) if actor.user_id is None else actor,
                 object_type="user", object_id=user.id, detail={"role": role})
    db.session.commit()
    return user


def _refuse_look_alike(email, skeleton):
    # Both are blind indexes (core/encryption/fields.py): the addresses themselves are stored encrypted.
    existing = db.session.scalar(select(User.email_index).where(or_(User.email == email,
                                                                    User.email_skeleton == skeleton)))
    if existing == User.email.blind_index_of(email):
        raise Conflict("An account with this e-mail address already exists.", code="email_taken")
    if existing is not None:
        raise Conflict("This e-mail address looks like the address of an existing account (letters from other "
                       "alphabets or full-width forms); use the address exactly as your mailbox spells it.",
                       code="email_confusable")


def authenticate(*, email, password, actor):
    """Check credentials and open a session. Every attempt, good or bad, is audited."""
    email = lookup_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        passwords.burn_verification_time(password)
        # The address's blind index, not the address: attempts on one address still correlate in the audit log.
        _deny_login(actor, reason="unknown_email", detail={"email_index": User.email.blind_index_of(email)})
    if not passwords.verify_password(user.password_hash, password):
        _deny_login(actor.acting_as(user), reason="wrong_password", user=user)
    if not user.active:
        _deny_login(actor.acting_as(user), reason="inactive", user=user)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    if mfa.is_enabled(user.id):
        # The password was right; the session waits for the second factor (POST /auth/login/mfa).
        trail.record("auth.mfa_challenge", actor.acting_as(user), object_type="user", object_id=user.id)
        db.session.commit()
        return mfa.issue_challenge(user)
    user.last_login_at = utcnow()
    pair = tokens.issue_session(user, actor)
    trail.record("auth.login", actor.acting_as(user), object_type="user", object_id=user.id)
    db.session.commit()
    return pair


def reauthenticate(user, claims, *, password, actor, code=None, recovery_code=None):
    """Prove it is still you (the password, and a code when MFA is on) for actions that need a recent sign-in;
    returns a new token pair in the same session with a fresh `auth_time`."""
    ratelimits.check("password_check", user.id)
    if not passwords.verify_password(user.password_hash, password):
        ratelimits.spend("password_check", user.id)
        trail.record("auth.reauthenticate", actor, object_type="user", object_id=user.id, outcome=trail.FAILURE,
                     detail={"reason": "wrong_password"})
        db.session.commit()
        raise Unauthorized("The password is incorrect.", code="invalid_credentials")
    amr = ["pwd"]
    if mfa.is_enabled(user.id):
        if code is None and recovery_code is None:
            raise Unauthorized("MFA is on for this account: send `code` (or `recovery_code`) too.",
                               code="mfa_code_required")
        mfa.verify_second_factor(user, actor, code=code, recovery_code=recovery_code, action="auth.reauthenticate")
        amr.append("otp")
    pair = tokens.reissue(user, claims, amr=amr, authenticated_now=True)
    trail.record("auth.reauthenticate", actor, object_type="user", object_id=user.id)
    db.session.commit()
    return pair
def email_lookup_index(address):
    """The blind index sign-in looks an address up by (lookup_email's form): a key for per-address counters."""
    return User.email.blind_index_of(lookup_email(address))


def _deny_login(actor, *, reason, user=None, detail=None):
    trail.record("auth.login", actor, object_type="user", object_id=user.id if user else None,
                 outcome=trail.FAILURE, detail={"reason": reason, **(detail or {})})
    db.session.commit()
    # One answer for every cause, so the response does not reveal which e-mails have accounts.
    raise Unauthorized("The e-mail or password is incorrect.", code="invalid_credentials")


def refresh(claims, actor):
    return tokens.rotate_refresh_token(claims, actor)


def logout(claims, actor):
    session = tokens.logout(claims)
    trail.record("auth.logout", actor, object_type="session", object_id=session.id if session else None)
    db.session.commit()


def update_profile(user, changes, actor, *, current_session_id=None, claims=None):
    """A user's own changes: name, timezone and password (the current one is required to change it, and a recent
    authentication: the token's `auth_time`)."""
    new_password = changes.pop("new_password", None)
    current_password = changes.pop("current_password", None)
    if new_password is not None:
        mfa.require_recent_authentication(claims or {})
        # Only wrong guesses count: someone holding a stolen access token must not get to try many passwords.
        ratelimits.check("password_check", user.id)
        if not current_password or not passwords.verify_password(user.password_hash, current_password):
            ratelimits.spend("password_check", user.id)
            raise InvalidInput("The current password is incorrect.", code="wrong_current_password",
                               errors={"current_password": ["The current password is incorrect."]})
        _check_password(new_password, user.email)
        user.password_hash = passwords.hash_password(new_password)
        user.password_changed_at = utcnow()
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    renamed = "full_name" in changes and changes["full_name"].strip() != user.full_name
    for field in ("full_name", "timezone"):
        if field in changes:
            setattr(user, field, changes[field].strip())
    trail.record("user.update", actor, object_type="user", object_id=user.id,
                 detail={"fields": sorted(changes) + (["password"] if new_password else [])})
    if renamed:
        user_renamed.send(user, actor=actor)
    if new_password is not None:
        # Other devices must sign in again with the new password; this one stays signed in.
        tokens.revoke_user_sessions(user.id, reason="password_changed", keep=current_session_id)
    db.session.commit()
    return user


def list_users_query(*, role=None, active=None, search=None):
    query = select(User).order_by(User.created_at.desc(), User.id)
    if role:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.active == active)
    if search:
        # Addresses are encrypted, so they match whole (by blind index); names match in part.
        term = search.strip()
        matches = [User.full_name.ilike(f"%{term.lower()}%")]
        if "@" in term:
            matches.append(User.email == lookup_email(term))
        query = query.where(or_(*matches))
    return query


def get_user(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def admin_update_user(user_id, changes, actor):
    """Role and active flag, set by an admin. Deactivation ends the user's sessions at once."""
    user = get_user(user_id)
    if user.id == actor.user_id and (changes.get("role", user.role) != "admin" or changes.get("active") is False):
        raise Conflict("Admins cannot demote or deactivate themselves.", code="self_lockout")
    if "role" in changes and changes["role"] != user.role:
        if changes["role"] not in ROLES:
            raise InvalidInput("Unknown role.", errors={"role": ["Unknown role."]})
        trail.record("user.role_change", actor, object_type="user", object_id=user.id,
                     detail={"from": user.role, "to": changes["role"]})
        user.role = changes["role"]
    if "active" in changes and changes["active"] != user.active:
        user.active = changes["active"]
        trail.record("user.activate" if user.active else "user.deactivate", actor, object_type="user",
                     object_id=user.id)
        if not user.active:
            tokens.revoke_user_sessions(user.id, reason="deactivated")
    db.session.commit()
    return user


def ensure_admin(*, email, password, full_name, actor):
    """Create the admin, or promote and re-activate the existing account (so the CLI is idempotent).

    Returns (user, created).
    """
    existing = db.session.scalar(select(User).where(User.email == normalize_email(email)))  # 422 when invalid
    if existing is None:
        return create_user_as_admin(email=email, password=password, full_name=full_name, role="admin",
                                    actor=actor), True
    if existing.role != "admin":
        trail.record("user.role_change", actor, object_type="user", object_id=existing.id,
                     detail={"from": existing.role, "to": "admin"})
        existing.role = "admin"
    existing.active = True
    db.session.commit()
    return existing, False


def _check_password(password, email):
    problems = passwords.policy_problems(password, email=email)
    if problems:
        # Its own code: the length rule is in the schema, but a common password or the e-mail address as password
        # cannot be, so a client that followed the OpenAPI document can still meet this refusal.
        raise InvalidInput("The password does not meet the policy.", code="weak_password",
                           errors={"password": problems})


@cache
def _known_timezones():
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name):
    """Refuse anything but an IANA timezone name."""
    if name not in _known_timezones():
        raise InvalidInput("Unknown timezone.", code="unknown_timezone",
                           errors={"timezone": ["Use an IANA name such as Europe/Paris."]})
