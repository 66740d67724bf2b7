from flask import current_app, request
from flask_jwt_extended import get_current_user, get_jwt, jwt_required

from blueprints.auth.schemas import LoginIn, MeUpdateIn, RegisterIn, TokenPairOut, UserOut
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.ratelimits import rate_limited
from pawmanity.identity import accounts
from pawmanity.identity.security import current_actor

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
@blp.errors(401, 415, 429)
def login(data):
    """Exchange e-mail and password for an access token (15 minutes) and a refresh token."""
    return accounts.authenticate(email=data["email"], password=data["password"], actor=current_actor())


@blp.route("/refresh", methods=["POST"])
@jwt_required(refresh=True)
@blp.response(200, TokenPairOut)
@blp.doc(security=[{"bearerAuth": []}], description="Send the refresh token as the bearer token. "
         "It is single-use: a second use ends the whole session.")
@blp.errors(401)
def refresh():
    """Rotate the refresh token and get a new access token."""
    return accounts.refresh(get_jwt(), current_actor())


@blp.route("/logout", methods=["POST"])
@blp.auth_required()
@blp.response(204)
def logout():
    """Revoke this access token and end its session."""
    accounts.logout(get_jwt(), current_actor())


@blp.route("/me", methods=["GET"])
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
    """Change your name, timezone or password (the current password is required to change it)."""
    return accounts.update_profile(get_current_user(), changes, current_actor(),
                                   current_session_id=get_jwt().get("sid"))
