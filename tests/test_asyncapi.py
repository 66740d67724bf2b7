"""The AsyncAPI 3.0 document of the Socket.IO namespaces: valid by the official JSON Schema and parser, complete
against what the server registers and emits, and true to the payloads the server really sends and acknowledges."""

import ast
import copy
import json
import shutil
import subprocess
from datetime import timedelta

import jsonschema
import pytest

from pawmanity.core.extensions import socketio
from tests.live_server import ROOT

SPECS = ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
PARSER = ROOT / "node_modules" / "@asyncapi" / "parser"
needs_npm = pytest.mark.skipif(not SPECS.is_file(), reason="needs the npm packages (npm install; make does it)")
# Socket.IO's own: sent by the library when a connect handler raises ConnectionRefused, never by an emit call.
RESERVED = {"connect_error"}


@pytest.fixture
def document(client):
    response = client.get("/api/v1/asyncapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


@needs_npm
def test_the_document_is_valid_by_the_official_asyncapi_3_schema(document):
    validator = jsonschema.Draft7Validator(json.loads(SPECS.read_text()))
    assert [error.message for error in validator.iter_errors(document)] == []
    # The validator does look: an AsyncAPI 2 `publish` operation is not AsyncAPI 3.
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert list(validator.iter_errors(broken))


@needs_npm
@pytest.mark.skipif(shutil.which("node") is None or not PARSER.is_dir(), reason="needs node and @asyncapi/parser")
def test_the_official_parser_accepts_the_document_without_errors_or_warnings(document, tmp_path):
    def diagnostics(doc):
        path = tmp_path / "asyncapi.json"
        path.write_text(json.dumps(doc))
        run = subprocess.run(["node", str(ROOT / "tests" / "asyncapi_validate.mjs"), str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        found = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        return run.returncode, [d for d in found if d["severity"] <= 1]  # 0 error, 1 warning (2 info, 3 hint)

    assert diagnostics(document) == (0, [])
    # The parser resolves references, which the JSON Schema alone cannot check.
    dangling = copy.deepcopy(document)
    dangling["operations"]["chat.receive.join"]["messages"] = [{"$ref": "#/channels/chat/messages/nothing"}]
    code, problems = diagnostics(dangling)
    assert code != 0 or problems


def documented(document, channel, action):
    """Event names of the channel's operations with this action."""
    return {operation["messages"][0]["$ref"].rsplit(".", 1)[-1]
            for key, operation in document["operations"].items()
            if operation["action"] == action and operation["channel"]["$ref"] == f"#/channels/{channel}"}


def test_every_event_the_server_handles_is_documented_and_nothing_more(app, document):
    handlers = socketio.server.namespace_handlers
    assert {channel["address"] for channel in document["channels"].values()} == set(handlers) == {
        "/", "/chat", "/notifications", "/video"}
    for key, channel in document["channels"].items():
        handler = handlers[channel["address"]]
        handled = {name.removeprefix("on_") for name in dir(handler)
                   if name.startswith("on_") and callable(getattr(handler, name))} - {"connect", "disconnect", "event"}
        assert handled == documented(document, key, "receive"), channel["address"]


def _emitted_event_names():
    """Event names passed as literals to Socket.IO emits anywhere in the code (webhooks have their own `emit`)."""
    emitters = {"emit", "emit_to_users", "emit_after_commit"}
    found = set()
    for path in [*(ROOT / "pawmanity").rglob("*.py"), *(ROOT / "blueprints").rglob("*.py")]:
        if "webhooks" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in emitters and isinstance(node.args[0].value, str):
                    found.add(node.args[0].value)
    return found


def test_every_event_the_server_emits_is_documented_and_nothing_more(document):
    sent = set().union(*(documented(document, key, "send") for key in document["channels"]))
    assert _emitted_event_names() == sent - RESERVED
    assert "message" in sent and "session_ended" in sent  # the scan finds the indirect emitters too


def test_connect_refusal_codes_are_the_servers(document):
    from pawmanity.identity.sockets import REFUSAL_CODES

    refusal = document["components"]["schemas"]["ConnectRefusal"]
    assert set(refusal["properties"]["message"]["enum"]) == set(REFUSAL_CODES)


class Payloads:
    """Checks payloads against the document's message schemas, by channel, direction and event."""

    def __init__(self, document):
        self.document = document
        self.checked = set()

    def check(self, channel, message_key, payload):
        message = self.document["components"]["messages"][f"{channel}.{message_key}"]
        schema = {**message["payload"], "components": {"schemas": self.document["components"]["schemas"]}}
        jsonschema.Draft202012Validator(schema).validate(payload)
        self.checked.add((channel, message_key))
        return payload

    def ack(self, channel, event, ack):
        return self.check(channel, "ack.error" if "error" in ack else f"ack.{event}", ack)

    def received(self, channel, socket, namespace):
        events = socket.get_received(namespace)
        for event in events:
            # The test client gives one argument as itself, several as a list.
            payload = event["args"][0] if isinstance(event["args"], list) else event["args"]
            self.check(channel, f"to_client.{event['name']}", payload)
        return {event["name"] for event in events}


def test_what_the_server_sends_and_acknowledges_matches_the_document(
        document, client, auth, tokens_for, gen_user, gen_patient, gen_doctor, gen_appointment, app):
    from pawmanity.core.database import utcnow
    from pawmanity.core.extensions import db
    from pawmanity.notifications import notifier

    payloads = Payloads(document)
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(minutes=2), status="confirmed")

    def connect(user, namespace):
        return socketio.test_client(app, namespace=namespace, auth={"token": tokens_for(user)["access_token"]})

    # The video session first: ending the consultation completes the appointment.
    session = client.post("/api/v1/video-sessions", json={"appointment_id": str(appointment.id)},
                          headers=auth(doctor_user)).get_json()

    # /chat
    consultation = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                               headers=auth(doctor_user)).get_json()
    mine, theirs = connect(owner, "/chat"), connect(doctor_user, "/chat")
    ref = {"consultation_id": consultation["id"]}

    def chat(socket, event, data):
        return payloads.ack("chat", event, socket.emit(event, payloads.check("chat", f"to_server.{event}", data),
                                                       namespace="/chat", callback=True))

    assert chat(mine, "join", ref)["ok"]
    assert chat(theirs, "join", ref)["ok"]
    sent = chat(mine, "message", {**ref, "body": "Biscuit is scratching", "client_id": "m-1", "attachment_ids": []})
    assert chat(mine, "typing", ref)["ok"]
    assert chat(theirs, "read", {**ref, "message_id": sent["message"]["id"]})["seq"] == 1
    assert chat(mine, "leave", ref)["ok"]
    assert chat(mine, "ping", {"sent": 1.5})["pong"] == {"sent": 1.5}
    assert chat(mine, "join", {"consultation_id": "not-a-uuid"})["error"]["code"] == "validation_failed"
    fresh = tokens_for(owner)["access_token"]
    assert payloads.ack("chat", "reauth", mine.emit("reauth", payloads.check("chat", "to_server.reauth", {
        "token": fresh}), namespace="/chat", callback=True))["ok"]
    ended = client.post(f"/api/v1/consultations/{consultation['id']}/end", json={"summary": "Ear mites."},
                        headers=auth(doctor_user))
    assert ended.status_code == 200, ended.get_data(as_text=True)
    assert payloads.received("chat", theirs, "/chat") >= {"message", "typing", "ended"}
    assert payloads.received("chat", mine, "/chat") >= {"read", "ended"}

    # /notifications
    listener = connect(owner, "/notifications")
    listener.get_received("/notifications")
    notifier.notify([owner.id], "appointment.confirmed", title="Confirmed", body="See you soon", data={"n": 1})
    db.session.commit()
    assert "notification" in payloads.received("notifications", listener, "/notifications")

    # /video
    caller, callee = connect(doctor_user, "/video"), connect(owner, "/video")

    def video(socket, user, event, data):
        return payloads.ack("video", event, socket.emit(event, payloads.check("video", f"to_server.{event}", data),
                                                        namespace="/video", callback=True))

    for socket, user in ((caller, doctor_user), (callee, owner)):
        grant = client.post(f"/api/v1/video-sessions/{session['id']}/join", headers=auth(user)).get_json()
        assert video(socket, user, "join", {"session_id": session["id"], "join_token": grant["join_token"]})["ok"]
    assert video(caller, doctor_user, "signal", {"session_id": session["id"], "type": "offer",
                                                 "data": {"type": "offer", "sdp": "v=0"}})["ok"]
    assert video(caller, doctor_user, "signal", {"session_id": "00000000-0000-0000-0000-000000000000",
                                                 "type": "ice", "data": {}})["error"]["code"] == "not_joined"
    assert payloads.received("video", callee, "/video") == {"signal"}
    assert video(callee, owner, "reauth", {"token": tokens_for(owner)["access_token"]})["ok"]
    assert video(callee, owner, "ping", "t-1")["pong"] == "t-1"
    callee.disconnect(namespace="/video")
    assert client.post(f"/api/v1/video-sessions/{session['id']}/end", headers=auth(doctor_user)).status_code == 200
    assert payloads.received("video", caller, "/video") == {"peer_joined", "peer_left", "ended"}

    # Every message of the chat and video channels was seen at least once, apart from the error event
    # (tests/test_rate_limits.py meets it) and the refusal (tests/test_socket_refusals.py).
    expected = {(key.split(".", 1)[0], key.split(".", 1)[1]) for key in document["components"]["messages"]
                if key.split(".", 1)[0] in ("chat", "video")}
    unseen = expected - payloads.checked
    assert unseen <= {(channel, message) for channel in ("chat", "video") for message in (
        "to_client.error", "to_client.connect_error", "to_client.session_ended")}


def test_the_home_page_and_the_api_docs_link_the_document(client):
    assert 'href="/api/v1/asyncapi.json"' in client.get("/").get_data(as_text=True)
    assert "(/api/v1/asyncapi.json)" in client.get("/api/v1/openapi.json").get_json()["info"]["description"]
