"""Revocation holds whatever happens to Redis: the database is its source of truth, and sign-in, token checks and
rate limits keep working while Redis is away."""

import redis

from tests.live_server import free_port
from tests.support import PASSWORD, REDIS_URL, assert_problem, bearer, redis_only

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def wipe_redis_keys_of(app):
    """What FLUSHDB does to this app: every key it wrote lives under its prefix. (The suite's Redis database is
    shared by the tests running beside this one, so the real FLUSHDB is done by the fault suite, on its own Redis.)"""
    connection = redis.Redis.from_url(REDIS_URL)
    keys = list(connection.scan_iter(match=f"*{app.config['REDIS_KEY_PREFIX']}*", count=1000))
    if keys:
        connection.delete(*keys)
    return len(keys)


@redis_only
def test_revoked_tokens_stay_revoked_when_redis_loses_its_data(app, client, gen_user, tokens_for):
    user = gen_user()
    logged_out, stolen, untouched = tokens_for(user), tokens_for(user), tokens_for(user)
    assert client.post(LOGOUT, headers=bearer(logged_out["access_token"])).status_code == 204
    rotated = client.post(REFRESH, headers=bearer(stolen["refresh_token"])).get_json()
    assert_problem(client.post(REFRESH, headers=bearer(stolen["refresh_token"])), 401, "refresh_token_reused")

    wipe_redis_keys_of(app)

    for access_token in (logged_out["access_token"], stolen["access_token"], rotated["access_token"]):
        assert_problem(client.get(ME, headers=bearer(access_token)), 401, "token_revoked")
    assert_problem(client.post(REFRESH, headers=bearer(logged_out["refresh_token"])), 401, "token_revoked")
    assert client.get(ME, headers=bearer(untouched["access_token"])).status_code == 200


def test_sign_in_and_revocation_work_while_redis_is_down(make_app, gen_user):
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = make_app(REDIS_URL=down, RATELIMIT_STORAGE_URI=down, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    registered = client.post("/api/v1/auth/register", json={
        "email": "while-down@example.com", "password": PASSWORD, "full_name": "Down Time", "role": "patient"})
    assert registered.status_code == 201, registered.get_data(as_text=True)
    pair = client.post(LOGIN, json={"email": "while-down@example.com", "password": PASSWORD}).get_json()
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    assert_problem(client.get(ME, headers=bearer(pair["access_token"])), 401, "token_revoked")

    # The sign-in limit is still enforced, counted in this process's memory.
    for _ in range(2):
        assert client.post(LOGIN, json={"email": "while-down@example.com", "password": "wrong guess"}) \
            .status_code == 401
    limited = client.post(LOGIN, json={"email": "while-down@example.com", "password": PASSWORD})
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
