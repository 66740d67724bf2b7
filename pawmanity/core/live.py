"""Live delivery over Socket.IO, sent once the database has committed what it announces, and its description.

With a Redis message queue configured the events reach clients of every server process, and a Celery worker can
send them too.

The AsyncAPI 3.0 document of the namespaces is served beside the OpenAPI document. Each namespace class describes
its own events next to its handlers: `client_events` (what it receives, each with the acknowledgement it answers)
and `server_events` (what it sends), merged along the class hierarchy. Payloads are the marshmallow schemas the
handlers load and dump with, converted to JSON Schema by apispec as the OpenAPI document's are, so the two
descriptions cannot drift from the code or from each other. In AsyncAPI's terms each namespace is a channel whose
address is the namespace; `receive` operations are events from clients (their `reply` is the Socket.IO
acknowledgement), `send` operations are events to clients.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from flask import current_app, jsonify

from pawmanity.core.api import API_PREFIX
from pawmanity.core.database import on_commit
from pawmanity.core.extensions import socketio

CHAT = "/chat"
NOTIFICATIONS = "/notifications"


def register_namespace(app, handler):
    """Register a Socket.IO namespace object with this app, which remembers it (its AsyncAPI document lists it)."""
    socketio.on_namespace(handler)
    app.extensions.setdefault("pawmanity.socket_namespaces", {})[handler.namespace] = handler


def registered_namespaces(app):
    return list(app.extensions.get("pawmanity.socket_namespaces", {}).values())


def user_room(user_id):
    return f"user:{user_id}"


def emit_after_commit(event_name, payload, *, namespace, room, skip_sid=None):
    on_commit(lambda: socketio.emit(event_name, payload, namespace=namespace, to=room, skip_sid=skip_sid))


def emit_to_users(event_name, payload, user_ids, *, namespace, skip_sid=None, after_commit=True):
    """Send to each user's own room: who receives is decided now, from the database, not by who joined a room
    earlier (a guardian removed since then hears nothing more)."""
    rooms = [user_room(user_id) for user_id in dict.fromkeys(user_ids)]

    def send():
        socketio.emit(event_name, payload, namespace=namespace, to=rooms, skip_sid=skip_sid)

    on_commit(send) if after_commit else send()


# The AsyncAPI document

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_REF = "#/components/schemas/"


@dataclass(frozen=True)
class ClientEvent:
    """An event a client emits: its payload schema (a marshmallow schema, or a JSON Schema dict where none applies),
    the schema of a successful acknowledgement, and what it does. Every acknowledgement may instead be an error one
    (the namespace's `error_ack`)."""

    payload: type | dict
    ack: type
    summary: str


@dataclass(frozen=True)
class ServerEvent:
    payload: type
    summary: str


def namespace_events(handler):
    """({event: ClientEvent}, {event: ServerEvent}) of a namespace object, base classes first."""
    received, sent = {}, {}
    for cls in reversed(type(handler).__mro__):
        received.update(vars(cls).get("client_events", {}))
        sent.update(vars(cls).get("server_events", {}))
    return received, sent


def channel_key(namespace):
    return namespace.strip("/").replace("/", ".") or "root"


class AsyncAPIDocument:
    """Builds the document from namespace objects (those registered with Flask-SocketIO)."""

    def __init__(self, *, title, version, public_url, description):
        self.title, self.version, self.public_url, self.description = title, version, public_url, description
        self._schemas = APISpec(title, version, "3.1.0", plugins=[MarshmallowPlugin()])
        self._owners = {}

    def _schema_ref(self, schema_cls):
        if isinstance(schema_cls, dict):  # a JSON Schema written out, where no marshmallow schema applies
            return schema_cls
        name = resolver(schema_cls)
        owner = self._owners.setdefault(name, schema_cls)
        if owner is not schema_cls:
            raise ValueError(f"two schemas are both named {name}: {owner} and {schema_cls}")
        if name not in self._schemas.components.schemas:
            self._schemas.components.schema(name, schema=schema_cls)
        return {"$ref": SCHEMA_REF + name}

    def build(self, namespaces):
        channels, operations, messages = {}, {}, {}
        for handler in sorted(namespaces, key=lambda item: item.namespace):
            key = channel_key(handler.namespace)
            received, sent = namespace_events(handler)
            channel_ref = {"$ref": f"#/channels/{key}"}
            channel_messages = {}

            def add_message(message_key, message, key=key, channel_messages=channel_messages):
                messages[f"{key}.{message_key}"] = message
                channel_messages[message_key] = {"$ref": f"#/components/messages/{key}.{message_key}"}
                return {"$ref": f"#/channels/{key}/messages/{message_key}"}

            error_ack = add_message("ack.error", {
                "title": "Error acknowledgement",
                "summary": "Any event's acknowledgement when it fails: {error: problem}.",
                "payload": self._schema_ref(handler.error_ack)})
            for event, spec in sorted(received.items()):
                request = add_message(f"to_server.{event}", {
                    "name": event, "title": event, "summary": spec.summary,
                    "payload": self._schema_ref(spec.payload)})
                ack = add_message(f"ack.{event}", {
                    "title": f"{event} acknowledgement", "summary": f"The acknowledgement of a successful {event}.",
                    "payload": self._schema_ref(spec.ack)})
                operations[f"{key}.receive.{event}"] = {
                    "action": "receive", "channel": channel_ref, "title": f"{handler.namespace} {event}",
                    "summary": spec.summary,
                    "description": "Emit with an acknowledgement callback: it is called with the success "
                                   "acknowledgement or with {error: problem}.",
                    "messages": [request],
                    "reply": {"channel": channel_ref, "messages": [ack, error_ack]},
                }
            for event, spec in sorted(sent.items()):
                message = add_message(f"to_client.{event}", {
                    "name": event, "title": event, "summary": spec.summary,
                    "payload": self._schema_ref(spec.payload)})
                operations[f"{key}.send.{event}"] = {
                    "action": "send", "channel": channel_ref, "title": f"{handler.namespace} {event}",
                    "summary": spec.summary, "messages": [message]}
            channels[key] = {"address": handler.namespace, "title": handler.namespace,
                             "description": handler.channel_description, "messages": channel_messages}

        url = urlsplit(self.public_url)
        return {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {"title": f"{self.title} realtime (Socket.IO)", "version": self.version,
                     "description": self.description},
            "defaultContentType": "application/json",
            "servers": {"this": {
                "host": url.netloc, "protocol": "wss" if url.scheme == "https" else "ws", "pathname": "/socket.io",
                "description": "Socket.IO 4 (Engine.IO 4) on this deployment, WebSocket or long-polling transport.",
                "security": [{"$ref": "#/components/securitySchemes/accessToken"}]}},
            "channels": channels,
            "operations": operations,
            "components": {
                "schemas": self._schemas.to_dict()["components"]["schemas"],
                "messages": messages,
                "securitySchemes": {"accessToken": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The access token of POST /api/v1/auth/login (or /auth/refresh), sent in the "
                                   "Socket.IO handshake as `auth: {token: <access token>}`, not as a header."}},
            },
        }


DESCRIPTION = """\
Live chat, notifications and WebRTC signalling over Socket.IO 4, beside the REST API (GET /api/v1/openapi.json).

Connect to a namespace with `auth: {token: <access token>}`. A refused connect arrives as Socket.IO's
`connect_error`, whose `message` is the reason's code and whose `data` is {status: 401, code, detail}.

A socket lives on the token it connected with: before that token expires, get a fresh one from
POST /api/v1/auth/refresh and send it as `reauth` on the open socket. Otherwise (or when the session is revoked) the
server sends `session_ended` and closes the socket.

Every event a client emits is answered through the Socket.IO acknowledgement callback, with the event's success
acknowledgement or with `{error: {status, code, detail, errors?}}` (the codes of the REST problems).
"""


def serve_asyncapi(app):
    """Serve the AsyncAPI document at /api/v1/asyncapi.json, built from the namespaces this app registered."""
    app.add_url_rule(f"{API_PREFIX}/asyncapi.json", "asyncapi_json", _serve_document)


def asyncapi_document(app):
    if "pawmanity.asyncapi" not in app.extensions:
        app.extensions["pawmanity.asyncapi"] = AsyncAPIDocument(
            title=app.config["API_TITLE"], version=app.config["API_VERSION"], public_url=app.config["PUBLIC_URL"],
            description=DESCRIPTION,
        ).build(registered_namespaces(app))
    return app.extensions["pawmanity.asyncapi"]


def _serve_document():
    return jsonify(asyncapi_document(current_app._get_current_object()))
