"""A refused Socket.IO connect tells the client why, as the real python-socketio client receives it from a real
server: `connect_error` with the problem code as its message and {status, code, detail} as its data."""

import time

import jwt
import pytest
import requests
import socketio as socketio_client

from tests.live_server import gunicorn
from tests.support import PASSWORD

pytestmark = pytest.mark.slow


def refusal(base_url, namespace, auth):
    """What a client trying `namespace` with `auth` is told: the connect_error's argument."""
    reasons = []
    client = socketio_client.Client(reconnection=False)
    client.on("connect_error", reasons.append, namespace=namespace)
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        client.connect(base_url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=10)
    client.disconnect()
    assert len(reasons) == 1, reasons
    return reasons[0]


def test_refused_connects_carry_the_problem_code(server_env, gen_user, tmp_path):
    from pawmanity.core.extensions import db

    active, leaving = gen_user(), gen_user()
    with gunicorn(server_env, tmp_path / "server.log") as base_url:
        def sign_in(user):
            return requests.post(f"{base_url}/api/v1/auth/login", timeout=10,
                                 json={"email": user.email, "password": PASSWORD}).json()

        pair = sign_in(active)
        logged_out = sign_in(active)
        assert requests.post(f"{base_url}/api/v1/auth/logout", timeout=10,
                             headers={"Authorization": f"Bearer {logged_out['access_token']}"}).status_code == 204
        deactivated = sign_in(leaving)
        leaving.active = False
        db.session.commit()
        # Signed with the server's key, so only its age is wrong.
        expired = jwt.encode({"sub": str(active.id), "type": "access", "jti": "expired-1", "fresh": False,
                              "iat": int(time.time()) - 3600, "nbf": int(time.time()) - 3600,
                              "exp": int(time.time()) - 60}, server_env["SECRET_KEY"], algorithm="HS256")

        cases = [
            ("/chat", None, "missing_token"),
            ("/video", {"token": ""}, "missing_token"),
            ("/chat", {"token": "not.a.jwt"}, "invalid_token"),
            ("/notifications", {"token": pair["refresh_token"]}, "invalid_token"),
            ("/chat", {"token": expired}, "token_expired"),
            ("/video", {"token": logged_out["access_token"]}, "token_revoked"),
            ("/notifications", {"token": deactivated["access_token"]}, "account_inactive"),
        ]
        for namespace, auth, code in cases:
            reason = refusal(base_url, namespace, auth)
            assert reason["message"] == code, (namespace, auth, reason)
            assert reason["data"]["code"] == code and reason["data"]["status"] == 401
            assert reason["data"]["detail"]

        # And the good token still connects, to every namespace.
        client = socketio_client.Client(reconnection=False)
        client.connect(base_url, namespaces=["/chat", "/notifications", "/video"],
                       auth={"token": pair["access_token"]}, transports=["websocket"], wait_timeout=10)
        assert client.connected
        client.disconnect()
