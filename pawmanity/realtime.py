"""Socket.IO foundations: token authentication at connect, shared by every plugin's namespace."""

import uuid

from flask import session
from flask_jwt_extended import decode_token
from flask_socketio import Namespace, join_room
from jwt import PyJWTError
from flask_jwt_extended.exceptions import JWTExtendedException

from pawmanity.extensions import db
from pawmanity.models import User
from pawmanity.services import tokens


def user_room(user_id):
    return f"user:{user_id}"


def authenticate_socket(auth):
    """The user behind `auth: {token}`, or ConnectionRefusedError (which Socket.IO turns into a refused connect)."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise ConnectionRefusedError({"code": "missing_token", "detail": "Connect with auth: {token: <access token>}."})
    try:
        claims = decode_token(token)
    except (PyJWTError, JWTExtendedException):
        raise ConnectionRefusedError({"code": "invalid_token", "detail": "The token is not valid or has expired."}) \
            from None
    if claims.get("type") != "access":
        raise ConnectionRefusedError({"code": "invalid_token", "detail": "Use an access token."})
    if tokens.is_revoked(claims):
        raise ConnectionRefusedError({"code": "token_revoked", "detail": "The token has been revoked."})
    try:
        user = db.session.get(User, uuid.UUID(claims["sub"]))
    except (KeyError, ValueError):
        user = None
    if user is None or not user.active:
        raise ConnectionRefusedError({"code": "account_inactive", "detail": "This account cannot connect."})
    return user, claims


class AuthenticatedNamespace(Namespace):
    """Refuses connections without a valid access token; puts each socket in its user's room."""

    def on_connect(self, auth=None):
        user, claims = authenticate_socket(auth)
        session["user_id"] = str(user.id)
        session["role"] = user.role
        session["sid"] = claims.get("sid")
        join_room(user_room(user.id))

    @staticmethod
    def current_user_id():
        return session.get("user_id")
