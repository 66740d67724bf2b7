"""Request-side authentication glue: JWT callbacks in the one error shape, and the Actor for the current request."""

from flask import current_app, g, request
from flask_jwt_extended import get_current_user, verify_jwt_in_request

from pawmanity.core.api import follow_instead
from pawmanity.core.errors import Forbidden, problem
from pawmanity.core.extensions import db, jwt
from pawmanity.identity import mfa, tokens
from pawmanity.identity.actor import Actor


def register_jwt_callbacks():
    # flask-jwt-extended asks "revoked?" and then "which user?"; one lookup answers both, so the first callback
    # keeps the user for the second.
    @jwt.token_in_blocklist_loader
    def token_revoked(_header, claims):
        user, revoked = tokens.user_and_revocation(claims)
        g.token_user = user
        release_connection()
        return revoked

    @jwt.user_lookup_loader
    def load_user(_header, claims):
        user = g.pop("token_user", None)
        if user is None or not user.active:
            return None
        g.user_id = user.id  # for the access log line
        if mfa.second_factor_missing(user, claims) and not _mfa_exempt_view():
            raise Forbidden("This deployment requires multi-factor sign-in for your role: enrol an authenticator "
                            "(POST /api/v1/auth/mfa/totp, then .../confirm) and use the tokens it returns.",
                            code="mfa_enrolment_required")
        return user

    @jwt.unauthorized_loader
    def missing_token(reason):
        return problem(401, detail="Sign in and send the access token as 'Authorization: Bearer <token>'.",
                       code="missing_token", headers={"WWW-Authenticate": "Bearer"})

    @jwt.invalid_token_loader
    def invalid_token(reason):
        return problem(401, detail="The token is not valid.", code="invalid_token",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    @jwt.expired_token_loader
    def expired_token(_header, _claims):
        return problem(401, detail="The token has expired; refresh it or sign in again.", code="token_expired",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    @jwt.revoked_token_loader
    def revoked_token(_header, _claims):
        return problem(401, detail="The token has been revoked; sign in again.", code="token_revoked",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    @jwt.user_lookup_error_loader
    def unknown_user(_header, _claims):
        return problem(401, detail="This account no longer exists or has been deactivated.",
                       code="account_inactive")

    @jwt.token_verification_failed_loader
    def verification_failed(_header, _claims):
        return problem(401, detail="The token was refused.", code="invalid_token")

    @jwt.needs_fresh_token_loader
    def needs_fresh(_header, _claims):
        return problem(401, detail="Sign in again to do this.", code="fresh_token_required")

    # The OpenAPI document's 401 examples: what the token check ends in (no view asks for a fresh token).
    follow_instead(verify_jwt_in_request, lambda: [token_revoked, load_user, missing_token, invalid_token,
                                                   expired_token, revoked_token, unknown_user, verification_failed])


def mfa_exempt(view):
    """Mark a view that an account which must use MFA may call before enrolling (enrolment itself, sign-out...)."""
    view.mfa_exempt = True
    view.exempt_refusals = {"mfa_enrolment_required"}  # not documented on it (pawmanity.core.api)
    return view


def _mfa_exempt_view():
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "mfa_exempt", False)


def release_connection():
    """End the lookup's read-only transaction, so its pooled connection goes back before the request body is read:
    a client sending its body slowly must not hold a connection. Objects stay loaded (no expiry on commit), and the
    view's first query takes a connection again. A request without a body keeps its connection: there is nothing
    to wait for, and giving it back would cost a commit, a checkout and a pre-ping on every read."""
    if request.content_length or "chunked" in request.headers.get("Transfer-Encoding", ""):
        db.session.commit()


def current_actor():
    """The caller as an Actor: the signed-in user when a token was verified, else anonymous from this address."""
    try:
        user = get_current_user()
    except RuntimeError:  # no token was checked on this request
        user = None
    return Actor(
        user_id=user.id if user else None,
        role=user.role if user else None,
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def optional_identity():
    """For public endpoints that show more to a signed-in caller: check a token only when one is sent."""
    verify_jwt_in_request(optional=True)
