"""Socket.IO foundations: token authentication at connect, shared by every plugin's namespace.

A socket lives on the access token it connected with. Before that token expires the client sends a `reauth` event
with a fresh access token (from POST /auth/refresh) to keep the connection; otherwise, or when the token's session
is revoked, the server sends `session_ended` ({code: "token_expired" | "token_revoked"}) and closes the socket, and
the client reconnects with a fresh token. Events on a socket whose token has expired or been revoked get an error
acknowledgement and close it.
"""

import time
import uuid
from functools import wraps

from flask import current_app, g, request, session
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_socketio import Namespace, disconnect, emit, join_room
from jwt import ExpiredSignatureError, PyJWTError
from marshmallow import INCLUDE, ValidationError, fields, validate
from socketio.exceptions import ConnectionRefusedError as SocketIORefusal

from pawmanity.core.errors import DomainError, Unauthorized
from pawmanity.core.extensions import db, socketio
from pawmanity.core.live import ClientEvent, ServerEvent, user_room
from pawmanity.core.observability import note_activity
from pawmanity.core.schemas import Schema, text_problem
from pawmanity.identity import mfa, tokens
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import User

# Why a connect (or a `reauth`) is refused: the `code` of the problem the client receives.
REFUSAL_CODES = {
    "missing_token": "Connect with auth: {token: <access token>}.",
    "invalid_token": "The token is not a valid access token.",
    "token_expired": "The access token has expired; get a fresh one from POST /api/v1/auth/refresh.",
    "token_revoked": "The token has been revoked.",
    "account_inactive": "This account cannot connect.",
    "mfa_enrolment_required": "Your role must sign in with MFA; enrol an authenticator first.",
}


class ConnectionRefused(SocketIORefusal):
    """A refused connect that tells the client why. Socket.IO sends the client a `connect_error` whose `message`
    is the code and whose `data` is the problem: {status: 401 (403 for mfa_enrolment_required), code, detail}.
    (Python's built-in ConnectionRefusedError reached the client as an empty error: the reason was lost.)"""

    def __init__(self, code, detail=None):
        status = 403 if code == "mfa_enrolment_required" else 401  # as REST answers: a known user, not allowed yet
        self.problem = {"status": status, "code": code, "detail": detail or REFUSAL_CODES[code]}
        super().__init__(code, self.problem)


class SocketProblem(Schema):
    """What went wrong, as in a REST problem body: the same codes."""

    class Meta:
        unknown = INCLUDE  # problems may carry extension members (retry_after, limit...)

    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code, e.g. not_found"})
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "Validation messages per field (422 only)"})


class ErrorAck(Schema):
    error = fields.Nested(SocketProblem, required=True)


class RefusalProblem(Schema):
    status = fields.Integer(required=True, validate=validate.OneOf((401, 403)))
    code = fields.String(required=True, validate=validate.OneOf(tuple(REFUSAL_CODES)))
    detail = fields.String(required=True)


class ConnectRefusal(Schema):
    message = fields.String(required=True, validate=validate.OneOf(tuple(REFUSAL_CODES)),
                            metadata={"description": "The reason's code"})
    data = fields.Nested(RefusalProblem, required=True)


class ReauthIn(Schema):
    token = fields.String(required=True, metadata={"description": "A fresh access token of the same account"})


class ReauthAck(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))
    expires_at = fields.Integer(required=True, metadata={"description": "When the new token expires (Unix time)"})


class PingAck(Schema):
    pong = fields.Raw(required=True, allow_none=True, metadata={"description": "What the ping carried"})


class SessionEnded(Schema):
    code = fields.String(required=True, validate=validate.OneOf(("token_expired", "token_revoked")))


def authenticate_socket(auth):
    """The user behind `auth: {token}`, or ConnectionRefused with the reason."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise ConnectionRefused("missing_token")
    try:
        claims = decode_token(token)
    except ExpiredSignatureError:
        raise ConnectionRefused("token_expired") from None
    except (PyJWTError, JWTExtendedException):
        raise ConnectionRefused("invalid_token") from None
    if claims.get("type") != "access":
        raise ConnectionRefused("invalid_token", "Use an access token, not a refresh token.")
    user, revoked = tokens.user_and_revocation(claims)  # the same single lookup REST requests make
    if revoked:
        raise ConnectionRefused("token_revoked")
    if user is None or not user.active:
        raise ConnectionRefused("account_inactive")
    if mfa.second_factor_missing(user, claims):
        raise ConnectionRefused("mfa_enrolment_required")
    return user, claims


def _socket_claims(claims):
    """What a socket keeps of its token: who, which token and session, and until when."""
    return {"sub": claims.get("sub"), "jti": claims.get("jti"), "sid": claims.get("sid"), "exp": claims.get("exp")}


def _expired(claims, now=None):
    expires = claims.get("exp")
    return isinstance(expires, (int, float)) and expires <= (now or time.time())


# This process's open sockets and the token each connected with: {(socket id, namespace): claims}.
_open_sockets = {}


class AuthenticatedNamespace(Namespace):
    """Refuses connections without a valid access token; puts each socket in its user's room.

    `client_events` and `server_events` describe the namespace's events for its AsyncAPI document; subclasses add
    their own (pawmanity.core.asyncapi merges them along the class hierarchy)."""

    channel_description = "The default namespace: a connection checks its token and does nothing more."
    error_ack = ErrorAck
    client_events = {
        "reauth": ClientEvent(ReauthIn, ReauthAck, "Carry this socket over to a fresh access token of the same "
                                                   "account, before the one it connected with expires."),
        "ping": ClientEvent({"description": "Anything (JSON), echoed back"}, PingAck,
                            "Answered at once, so a client can measure its round trip."),
    }
    server_events = {
        "connect_error": ServerEvent(ConnectRefusal, "The connect was refused (Socket.IO's own event): the token "
                                                     "is missing, invalid, expired or revoked, or the account "
                                                     "inactive."),
        "session_ended": ServerEvent(SessionEnded, "The socket's token expired (no `reauth` in time) or its "
                                                   "session was revoked; the socket is closed next."),
        "error": ServerEvent(SocketProblem, "A rate limit was met (also in the acknowledgement)."),
    }

    def on_connect(self, auth=None):
        user, claims = authenticate_socket(auth)
        session["user_id"] = str(user.id)
        session["role"] = user.role
        session["claims"] = _socket_claims(claims)
        join_room(user_room(user.id))
        _open_sockets[(request.sid, self.namespace)] = session["claims"]
        _start_revocation_sweep()

    def on_disconnect(self, reason=None):
        _open_sockets.pop((request.sid, self.namespace), None)

    def on_reauth(self, data=None):
        """Carry the open socket over to a fresh access token of the same account: `{token: <access token>}`.
        Accepted even when the old token has just expired (the socket has not been swept yet)."""
        try:
            user, claims = authenticate_socket(data)
        except ConnectionRefused as refused:
            return {"error": refused.problem}
        if str(user.id) != session.get("user_id"):
            return {"error": {"status": 403, "code": "other_account",
                              "detail": "Re-authenticate with a token of the account that opened this socket."}}
        session["claims"] = _socket_claims(claims)
        _open_sockets[(request.sid, self.namespace)] = session["claims"]
        return {"ok": True, "expires_at": claims["exp"]}

    def on_ping(self, data=None):
        """Answer at once, so a client can measure its round trip through this worker's event loop."""
        return {"pong": data}

    def trigger_event(self, event, *args):
        note_activity(f"socket {self.namespace} {event}")
        return super().trigger_event(event, *args)

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
        claims = session.get("claims") or {"sub": session.get("user_id")}
        if _expired(claims):
            disconnect()
            return {"error": {"status": 401, "code": "token_expired",
                              "detail": "The access token has expired; reconnect (or send `reauth`) with a fresh one."}}
        # One lookup answers both "is this token still good?" and "who is this, now?".
        user, revoked = tokens.user_and_revocation(claims)
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
    """Once per process: every few seconds, disconnect open sockets whose token has expired or whose token or
    session has been revoked (logout, a reused refresh token, a deactivated account), even if they send nothing."""
    interval = current_app.config["SOCKET_REVOCATION_SWEEP_SECONDS"]
    state = current_app.extensions.setdefault("socket_revocation_sweep", {})
    if not interval or state.get("started"):
        return
    state["started"] = True
    socketio.start_background_task(run_supervised, current_app._get_current_object(), "socket revocation sweep",
                                   sweep_revoked_sockets, interval, state)


def run_supervised(app, name, step, interval, state):
    """Run `step` every `interval` seconds for as long as the process lives (or until `state["stop"]` is set).

    A failing step (the database away, a bug) must not end the loop: it is logged -- with its traceback the first
    time, as one line while it keeps failing -- and retried after 1, 2, 4... seconds, never more than `interval`,
    so a store that comes back is used again within one period.
    """
    failures = 0
    delay = interval
    while not state.get("stop"):
        socketio.sleep(delay)
        if state.get("stop"):
            return
        try:
            with app.app_context():
                step()
        except Exception as error:
            failures += 1
            if failures == 1:
                app.logger.exception("%s failed; retrying", name)
            else:
                app.logger.warning("%s failed again (%d in a row): %s", name, failures, type(error).__name__)
            delay = min(interval, 2 ** (failures - 1))
        else:
            if failures:
                app.logger.info("%s recovered after %d failures", name, failures)
            failures, delay = 0, interval
        state["last_run"] = time.monotonic()


def sweep_revoked_sockets():
    """Disconnect this process's sockets whose token has expired or been revoked. Returns how many.

    One query covers every open socket; each dropped socket is told why (`session_ended`) before it is closed.
    """
    now = time.time()
    sockets = list(_open_sockets.items())
    revoked = tokens.revoked_among([claims for _key, claims in sockets]) if sockets else []
    ended = 0
    for ((socket_id, namespace), claims), is_revoked in zip(sockets, revoked):
        if not (is_revoked or _expired(claims, now)):
            continue
        if _open_sockets.get((socket_id, namespace)) is not claims:
            continue  # it re-authenticated (or closed) meanwhile
        _open_sockets.pop((socket_id, namespace), None)
        code = "token_revoked" if is_revoked else "token_expired"
        socketio.server.emit("session_ended", {"code": code}, to=socket_id, namespace=namespace)
        socketio.server.disconnect(socket_id, namespace=namespace)
        ended += 1
    return ended
