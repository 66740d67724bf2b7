"""Socket.IO authenticates with the access token at connect; a bad token never gets a connection."""

from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from pawmanity.core.extensions import db, socketio
from pawmanity.identity.sockets import AuthenticatedNamespace, user_room
from tests.support import bearer


class WhoAmINamespace(AuthenticatedNamespace):
    def on_whoami(self, _data=None):
        return {"user_id": self.current_user_id()}


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
