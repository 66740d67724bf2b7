"""Access and refresh tokens, sign-in sessions and the blocklist.

- An access token (15 minutes) carries the user id as its subject, the role and the session id (`sid`).
- A refresh token is single-use: using it marks it used and issues a new pair in the same session. A second use of
  the same refresh token means it was stolen, so the whole session (the token family) is revoked.
- Logging out blocklists the access token and revokes its session, which ends its refresh tokens too.
- Both tokens carry how and when their user last proved who they are: `amr` (RFC 8176: "pwd", plus "otp" after a
  TOTP or recovery code) and `auth_time` (epoch seconds). Refreshing keeps both; re-authenticating renews them.
The blocklist lives in the database, whether or not Redis is configured: Redis may lose its data (a restart, a
FLUSHDB, an eviction) at any time, and a revocation must never come undone. Every authenticated request loads its
user from the database anyway, so the blocklist check rides on that same query and costs no extra round trip.
"""

import uuid
from datetime import datetime, timedelta, timezone

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import bindparam, delete, select

from pawmanity.audit import trail
from pawmanity.core.database import upsert_into, utcnow
from pawmanity.core.errors import Unauthorized
from pawmanity.core.extensions import db
from pawmanity.identity.models import AuthSession, RefreshToken, RevokedToken, User


def issue_session(user, actor, *, amr=("pwd",)):
    """Start a new sign-in session and return its first token pair."""
    now = utcnow()
    session = AuthSession(
        id=uuid.uuid4(), user_id=user.id, created_at=now, last_used_at=now,
        expires_at=now + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        ip=actor.ip, user_agent=(actor.user_agent or "")[:256] or None,
    )
    db.session.add(session)
    return _token_pair(user, session, now, amr=amr, auth_time=now)


def reissue(user, claims, *, amr, authenticated_now):
    """A new pair in the session of these access-token claims: after a re-authentication (`authenticated_now`
    renews auth_time) or a second factor added to the session (amr grows, auth_time stays)."""
    session = db.session.get(AuthSession, _uuid_or_none(claims.get("sid")))
    if session is None or session.revoked_at is not None or session.user_id != user.id:
        raise Unauthorized("This session has ended; sign in again.", code="token_revoked")
    now = utcnow()
    auth_time = now if authenticated_now else _auth_time(claims, session)
    session.last_used_at = now
    return _token_pair(user, session, now, amr=amr, auth_time=auth_time)


def rotate_refresh_token(claims, actor):
    """Exchange a refresh token for a new pair.

    The row lock makes two uses of one token race safely: exactly one rotates, the other is caught as reuse.
    """
    jti = _uuid_or_none(claims.get("jti"))
    token = db.session.scalar(
        select(RefreshToken).where(RefreshToken.jti == jti).with_for_update()
    ) if jti else None
    if token is None:
        raise Unauthorized("This refresh token is not recognised.", code="invalid_token")
    session = token.session
    user = session.user
    if session.revoked_at is not None or not user.active:
        raise Unauthorized("This session has ended; sign in again.", code="token_revoked")
    now = utcnow()
    if token.used_at is not None:
        revoke_session(session, reason="refresh_reuse", at=now)
        trail.record("auth.refresh_reuse", actor.acting_as(user), object_type="session", object_id=session.id,
                     outcome=trail.DENIED)
        db.session.commit()
        raise Unauthorized("This refresh token was already used; the session has been ended for safety.",
                           code="refresh_token_reused")
    token.used_at = now
    session.last_used_at = now
    pair = _token_pair(user, session, now, amr=claims.get("amr") or ("pwd",), auth_time=_auth_time(claims, session))
    db.session.commit()
    return pair


def revoke_session(session, *, reason, at=None):
    if session.revoked_at is None:
        session.revoked_at = at or utcnow()
        session.revoked_reason = reason
    blocklist_add(f"sid:{session.id}", session.expires_at)


def revoke_user_sessions(user_id, *, reason, keep=None):
    query = select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AuthSession.id != _uuid_or_none(keep))
    sessions = db.session.scalars(query).all()
    for session in sessions:
        revoke_session(session, reason=reason)
    return len(sessions)


def logout(claims):
    """Blocklist this access token and end its session (and so its refresh tokens)."""
    blocklist_add(f"jti:{claims['jti']}", datetime.fromtimestamp(claims["exp"], timezone.utc))
    session_id = _uuid_or_none(claims.get("sid"))
    # A token without a session id (PAWMANITY issues none) has only its jti to revoke; get(None) warns and may raise.
    session = db.session.get(AuthSession, session_id) if session_id else None
    if session is not None:
        revoke_session(session, reason="logout")
    return session


def is_revoked(claims):
    """Whether this token, or the session it belongs to, has been revoked."""
    return db.session.scalar(select(_any_revoked(_revocation_keys(claims)))) is True


def is_key_revoked(key):
    """Whether this blocklist key (a token's, a session's or a used sign-in challenge's) is there."""
    return db.session.scalar(select(_any_revoked([key]))) is True


def revoked_among(claims_list):
    """Which of these tokens are revoked, in one query: a list of booleans in the same order."""
    keys_per_token = [_revocation_keys(claims) for claims in claims_list]
    wanted = sorted({key for keys in keys_per_token for key in keys})
    revoked = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists, whatever the number of open sockets
        revoked.update(db.session.scalars(select(RevokedToken.key)
                                          .where(RevokedToken.key.in_(wanted[start:start + 500]))))
    return [any(key in revoked for key in keys) for keys in keys_per_token]


# Built once: every authenticated request runs it, and building a SELECT and its cache key each time cost more CPU
# than executing it. A token without a session id binds NULL, which IN never matches.
_USER_AND_REVOCATION = select(
    User,
    select(RevokedToken.key).where(RevokedToken.key.in_([bindparam("jti_key"), bindparam("sid_key")])).exists(),
).where(User.id == bindparam("user_id"))


def user_and_revocation(claims):
    """The token's user and whether the token is revoked, in one database round trip: the check every
    authenticated request (and every socket event) makes."""
    user_id = _uuid_or_none(claims.get("sub"))
    if user_id is None:
        return None, False
    jti_key, sid_key = (*_revocation_keys(claims), None)[:2]
    row = db.session.execute(_USER_AND_REVOCATION, {"user_id": user_id, "jti_key": jti_key, "sid_key": sid_key}).first()
    return (row[0], row[1]) if row else (None, False)


def _revocation_keys(claims):
    keys = [f"jti:{claims.get('jti')}"]
    if claims.get("sid"):
        keys.append(f"sid:{claims['sid']}")
    return keys


def _any_revoked(keys):
    return select(RevokedToken.key).where(RevokedToken.key.in_(keys)).exists()


def blocklist_add(key, expires_at):
    # Two logouts of one token at once must both succeed: insert, or find it already there.
    db.session.execute(upsert_into(RevokedToken).values(key=key, expires_at=expires_at)
                       .on_conflict_do_nothing(index_elements=["key"]))


def purge_expired(now=None):
    """Drop refresh tokens and blocklist rows that can no longer matter."""
    now = now or utcnow()
    grace = now - timedelta(days=1)
    tokens = db.session.execute(delete(RefreshToken).where(RefreshToken.expires_at < grace)).rowcount
    revoked = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < grace)).rowcount
    db.session.commit()
    return tokens, revoked


def _auth_time(claims, session):
    """When the user last authenticated: the token's claim, or (tokens from before the claim) the sign-in."""
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, int):
        return datetime.fromtimestamp(auth_time, timezone.utc)
    return session.created_at


def _token_pair(user, session, now, *, amr, auth_time):
    config = current_app.config
    refresh_jti = uuid.uuid4()
    refresh_expires = min(session.expires_at, now + config["JWT_REFRESH_TOKEN_EXPIRES"])
    db.session.add(RefreshToken(jti=refresh_jti, session_id=session.id, issued_at=now, expires_at=refresh_expires))
    identity = str(user.id)
    authentication = {"amr": list(amr), "auth_time": int(auth_time.timestamp())}
    access = create_access_token(identity, additional_claims={"role": user.role, "sid": str(session.id),
                                                              **authentication})
    refresh = create_refresh_token(
        identity, additional_claims={"sid": str(session.id), "jti": str(refresh_jti), **authentication},
        expires_delta=refresh_expires - now,
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
