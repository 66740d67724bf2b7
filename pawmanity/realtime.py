"""Socket.IO foundations: token authentication at connect, shared by every plugin's namespace."""

import uuid
from functools import wraps

from flask import current_app, g, request, session
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_socketio import Namespace, disconnect, emit, join_room
from jwt import PyJWTError
from marshmallow import ValidationError

from pawmanity.errors import DomainError, Unauthorized
from pawmanity.schemas import text_problem
from pawmanity.extensions import db, socketio
from pawmanity.models import User
from pawmanity.services import tokens
from pawmanity.services.actor import Actor
from pawmanity.services.live import user_room


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
    user, revoked = tokens.user_and_revocation(claims)  # the same single lookup REST requests make
    if revoked:
        raise ConnectionRefusedError({"code": "token_revoked", "detail": "The token has been revoked."})
    if user is None or not user.active:
        raise ConnectionRefusedError({"code": "account_inactive", "detail": "This account cannot connect."})
    return user, claims


# This process's open sockets and the token each connected with: {(socket id, namespace): claims}.
_open_sockets = {}


class AuthenticatedNamespace(Namespace):
    """Refuses connections without a valid access token; puts each socket in its user's room."""

    def on_connect(self, auth=None):
        user, claims = authenticate_socket(auth)
        session["user_id"] = str(user.id)
        session["role"] = user.role
        session["claims"] = {"sub": claims.get("sub"), "jti": claims.get("jti"), "sid": claims.get("sid")}
        join_room(user_room(user.id))
        _open_sockets[(request.sid, self.namespace)] = session["claims"]
        _start_revocation_sweep()

    def on_disconnect(self, reason=None):
        _open_sockets.pop((request.sid, self.namespace), None)

    @staticmethod
    def current_user_id():
        return session.get("user_id")


def socket_actor():
    """The Actor behind the current Socket.IO event, with the role the database holds now (a role change or a
    deactivation applies to open sockets at once, as it does to REST). `acknowledged` loaded the user."""
    user = g.get("socket_user") or db.session.get(User, uuid.UUID(session["user_id"]))
    if user is None or not user.active:
        disconnect()
        raise Unauthorized("This account cannot use the connection any more.", code="account_inactive")
    return Actor(user_id=user.id, role=user.role, ip=request.remote_addr)


def acknowledged(handler):
    """Run an event handler; domain and validation errors become an `{error: {...}}` acknowledgement, never a
    crash. A socket whose token was revoked since it connected is disconnected instead."""

    @wraps(handler)
    def wrapper(self, data=None):
        # One lookup answers both "is this token still good?" and "who is this, now?".
        user, revoked = tokens.user_and_revocation(session.get("claims") or {"sub": session.get("user_id")})
        if revoked:
            disconnect()
            return {"error": {"status": 401, "code": "token_revoked", "detail": "Your session has ended."}}
        g.socket_user = user
        try:
            # Every event, whether or not its handler loads a schema: nothing too deep for the handler to walk,
            # no text the database cannot store.
            problem = text_problem(data)
            if problem:
                raise ValidationError(problem, "_schema")
            return handler(self, data)
        except ValidationError as error:
            return {"error": {"status": 422, "code": "validation_failed", "detail": "The event did not validate.",
                              "errors": error.normalized_messages()}}
        except DomainError as error:
            body = {"status": error.status, "code": error.code, "detail": error.detail, **error.extra}
            if error.errors:
                body["errors"] = error.errors
            if error.status == 429:
                emit("error", body)
            return {"error": body}
        except Exception:  # a bug must not leave the client without an answer, nor reveal a trace
            db.session.rollback()
            current_app.logger.exception("socket event %s failed", handler.__name__)
            return {"error": {"status": 500, "code": "internal_error", "detail": "Something went wrong on our side."}}

    return wrapper


def _start_revocation_sweep():
    """Once per process: every few seconds, disconnect open sockets whose token or session has been revoked
    (logout, a reused refresh token, a deactivated account), even if they send nothing."""
    interval = current_app.config["SOCKET_REVOCATION_SWEEP_SECONDS"]
    state = current_app.extensions.setdefault("socket_revocation_sweep", {})
    if not interval or state.get("started"):
        return
    state["started"] = True
    socketio.start_background_task(_sweep_forever, current_app._get_current_object(), interval)


def _sweep_forever(app, interval):
    while True:
        socketio.sleep(interval)
        with app.app_context():
            sweep_revoked_sockets()


def sweep_revoked_sockets():
    """Disconnect this process's sockets whose token is revoked. Returns how many."""
    revoked = [key for key, claims in list(_open_sockets.items()) if tokens.is_revoked(claims)]
    for socket_id, namespace in revoked:
        _open_sockets.pop((socket_id, namespace), None)
        socketio.server.disconnect(socket_id, namespace=namespace)
    return len(revoked)
