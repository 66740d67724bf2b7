"""Socket.IO authenticates with the access token at connect; a bad token never gets a connection."""

import time
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token, decode_token
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from pawmanity.core.extensions import db, socketio
from pawmanity.identity.sockets import AuthenticatedNamespace, acknowledged, sweep_revoked_sockets, user_room
from tests.support import bearer


class WhoAmINamespace(AuthenticatedNamespace):
    def on_whoami(self, _data=None):
        return {"user_id": self.current_user_id()}

    @acknowledged
    def on_echo(self, data):
        return {"ok": True, "data": data}


@pytest.fixture
def socket_app(app):
    # Namespaces register on the server of the most recent init_app, which is this test's app.
    socketio.on_namespace(WhoAmINamespace("/whoami"))
    return app


def connect(app, auth):
    return socketio.test_client(app, namespace="/whoami", auth=auth)


def test_valid_token_connects_and_joins_the_users_room(socket_app, gen_user, tokens_for):
    user = gen_user()
    client = connect(socket_app, {"token": tokens_for(user)["access_token"]})
    assert client.is_connected("/whoami")
    assert client.emit("whoami", {}, namespace="/whoami", callback=True) == {"user_id": str(user.id)}
    socketio.emit("ping", {"n": 1}, namespace="/whoami", to=user_room(user.id))
    assert client.get_received("/whoami")[0]["args"] == [{"n": 1}]
    client.disconnect(namespace="/whoami")


@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": 42}, {"token": "not.a.jwt"}, "a string"])
def test_missing_or_malformed_token_is_refused(socket_app, auth):
    assert not connect(socket_app, auth).is_connected("/whoami")


def test_expired_token_is_refused(socket_app, gen_user):
    token = create_access_token(str(gen_user().id), expires_delta=timedelta(seconds=-1))
    assert not connect(socket_app, {"token": token}).is_connected("/whoami")


def test_revoked_token_is_refused(socket_app, gen_user, tokens_for):
    pair = tokens_for(gen_user())
    socket_app.test_client().post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert not connect(socket_app, {"token": pair["access_token"]}).is_connected("/whoami")


def test_refresh_token_is_refused(socket_app, gen_user, tokens_for):
    assert not connect(socket_app, {"token": tokens_for(gen_user())["refresh_token"]}).is_connected("/whoami")


def test_deactivated_user_is_refused(socket_app, gen_user, tokens_for):
    user = gen_user()
    token = tokens_for(user)["access_token"]
    user.active = False
    db.session.commit()
    assert not connect(socket_app, {"token": token}).is_connected("/whoami")


def short_lived_token(user, seconds=3):
    token = create_access_token(str(user.id), expires_delta=timedelta(seconds=seconds))
    return token, decode_token(token)["exp"]


def wait_past(moment):
    time.sleep(max(0.0, moment - time.time()) + 0.1)


def session_ended_codes(client):
    # The test client refuses get_received once disconnected; its queue still holds what arrived before.
    return [pkt["args"][0]["code"] for pkt in client.queue if pkt["name"] == "session_ended"]


def test_an_expired_token_cannot_use_its_open_socket(socket_app, gen_user):
    token, expires = short_lived_token(gen_user())
    client = connect(socket_app, {"token": token})
    assert client.emit("echo", {}, namespace="/whoami", callback=True)["ok"]
    wait_past(expires)
    ack = client.emit("echo", {}, namespace="/whoami", callback=True)
    assert ack["error"]["code"] == "token_expired"
    assert not client.is_connected("/whoami")


def test_the_sweep_closes_idle_sockets_whose_token_expired_and_says_why(socket_app, gen_user, tokens_for):
    token, expires = short_lived_token(gen_user())
    expiring = connect(socket_app, {"token": token})
    lasting = connect(socket_app, {"token": tokens_for(gen_user())["access_token"]})
    wait_past(expires)
    assert sweep_revoked_sockets() == 1
    assert not expiring.is_connected("/whoami") and lasting.is_connected("/whoami")
    assert session_ended_codes(expiring) == ["token_expired"]


def test_reauth_carries_an_open_socket_over_to_a_fresh_token(socket_app, gen_user, tokens_for):
    user, stranger = gen_user(), gen_user()
    token, expires = short_lived_token(user)
    client = connect(socket_app, {"token": token})
    assert client.emit("reauth", {"token": "forged"}, namespace="/whoami", callback=True)["error"]["code"] == \
        "invalid_token"
    other = client.emit("reauth", {"token": tokens_for(stranger)["access_token"]}, namespace="/whoami",
                        callback=True)
    assert other["error"]["code"] == "other_account"
    fresh = tokens_for(user)["access_token"]
    assert client.emit("reauth", {"token": fresh}, namespace="/whoami", callback=True)["ok"]
    wait_past(expires)
    assert sweep_revoked_sockets() == 0
    assert client.emit("echo", {}, namespace="/whoami", callback=True)["ok"]
    # From now on the socket lives and dies with the fresh token's session.
    socket_app.test_client().post("/api/v1/auth/logout", headers=bearer(fresh))
    assert sweep_revoked_sockets() == 1 and not client.is_connected("/whoami")


def test_the_sweep_outlives_a_failing_revocation_store(make_app, gen_user, tokens_for):
    interval = 1
    app = make_app(SOCKET_REVOCATION_SWEEP_SECONDS=interval)
    socketio.on_namespace(WhoAmINamespace("/whoami"))
    pair = tokens_for(gen_user())
    client = socketio.test_client(app, namespace="/whoami", auth={"token": pair["access_token"]})
    sweep = app.extensions["socket_revocation_sweep"]
    failures = []

    def store_down(_conn, _cursor, statement, *_args):
        if "revoked_tokens" in statement:
            failures.append(time.monotonic())
            raise OperationalError(statement, {}, Exception("the database is restarting"))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", store_down)
    try:
        deadline = time.monotonic() + 10
        while len(failures) < 3 and time.monotonic() < deadline:  # the store fails for several sweeps in a row
            time.sleep(0.05)
        assert len(failures) >= 3
        event.remove(engine, "before_cursor_execute", store_down)
        app.test_client().post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
        logged_out = time.monotonic()
        while client.is_connected("/whoami") and time.monotonic() - logged_out < 5:
            time.sleep(0.02)
        assert not client.is_connected("/whoami")
        assert time.monotonic() - logged_out <= interval + 0.5  # within one sweep period (and some slack)
        assert session_ended_codes(client) == ["token_revoked"]
    finally:
        if event.contains(engine, "before_cursor_execute", store_down):
            event.remove(engine, "before_cursor_execute", store_down)
        sweep["stop"] = True
