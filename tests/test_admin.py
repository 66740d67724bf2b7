"""Administration: only admins, every change audited, deactivation takes effect at once."""

import pytest
from sqlalchemy import select

from pawmanity.audit.models import AuditEvent
from pawmanity.core.extensions import db
from tests.support import PASSWORD, assert_problem, bearer

USERS = "/api/v1/admin/users"


@pytest.fixture
def admin(gen_user):
    return gen_user(role="admin")


@pytest.mark.parametrize("role", ["patient", "doctor"])
@pytest.mark.parametrize("method, path", [("get", USERS), ("post", USERS), ("get", "/api/v1/admin/audit"),
                                          ("patch", f"{USERS}/00000000-0000-4000-8000-000000000000")])
def test_non_admins_are_forbidden(client, gen_user, auth, role, method, path):
    kwargs = {"json": {"role": "admin"}} if method in ("post", "patch") else {}
    assert_problem(getattr(client, method)(path, headers=auth(gen_user(role=role)), **kwargs), 403, "forbidden")


def test_anonymous_gets_401(client):
    assert_problem(client.get(USERS), 401)


def test_list_users_is_paginated(client, gen_user, auth, admin):
    for _ in range(5):
        gen_user()
    body = client.get(f"{USERS}?page=2&per_page=2", headers=auth(admin)).get_json()
    assert body["page"] == 2 and body["per_page"] == 2 and body["total"] == 6
    assert len(body["items"]) == 2


def test_list_users_filters(client, gen_user, auth, admin):
    gen_user(role="doctor", full_name="Dr. Zed Quill")
    gen_user(role="patient")
    body = client.get(f"{USERS}?role=doctor", headers=auth(admin)).get_json()
    assert [u["role"] for u in body["items"]] == ["doctor"]
    assert client.get(f"{USERS}?q=quill", headers=auth(admin)).get_json()["total"] == 1


@pytest.mark.parametrize("query", ["per_page=101", "per_page=1000000", "per_page=0", "page=0", "page=abc",
                                   "role=superuser"])
def test_bad_paging_and_filters_get_422(client, auth, admin, query):
    assert_problem(client.get(f"{USERS}?{query}", headers=auth(admin)), 422, "validation_failed")


def test_role_change_is_applied_and_audited(client, gen_user, auth, admin):
    user = gen_user()
    response = client.patch(f"{USERS}/{user.id}", json={"role": "doctor"}, headers=auth(admin))
    assert response.status_code == 200 and response.get_json()["role"] == "doctor"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.role_change"))
    assert event.actor_id == admin.id and event.object_id == str(user.id)
    assert event.detail == {"from": "patient", "to": "doctor"}


def test_new_role_takes_effect_on_existing_tokens(client, gen_user, auth, admin):
    user = gen_user()
    headers = auth(user)
    assert_problem(client.get(USERS, headers=headers), 403)
    client.patch(f"{USERS}/{user.id}", json={"role": "admin"}, headers=auth(admin))
    assert client.get(USERS, headers=headers).status_code == 200


def test_deactivation_ends_sessions_at_once(client, gen_user, auth, admin, tokens_for):
    user = gen_user()
    pair = tokens_for(user)
    client.patch(f"{USERS}/{user.id}", json={"active": False}, headers=auth(admin))
    assert_problem(client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])), 401)
    assert_problem(client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}), 401)


def test_admin_cannot_lock_themselves_out(client, auth, admin):
    assert_problem(client.patch(f"{USERS}/{admin.id}", json={"active": False}, headers=auth(admin)), 409,
                   "self_lockout")
    assert_problem(client.patch(f"{USERS}/{admin.id}", json={"role": "doctor"}, headers=auth(admin)), 409)


def test_unknown_user_and_malformed_id_are_404(client, auth, admin):
    assert_problem(client.patch(f"{USERS}/00000000-0000-4000-8000-000000000000", json={"active": False},
                                headers=auth(admin)), 404)
    assert_problem(client.patch(f"{USERS}/42", json={"active": False}, headers=auth(admin)), 404)


def test_empty_update_is_refused(client, gen_user, auth, admin):
    assert_problem(client.patch(f"{USERS}/{gen_user().id}", json={}, headers=auth(admin)), 422)
    # ... as the document says, so a generated client knows
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["AdminUserUpdateIn"]
    assert schema["minProperties"] == 1


@pytest.mark.parametrize("active", [0, 1, "true", "yes", None])
def test_active_is_a_json_boolean(client, gen_user, auth, admin, active):
    user = gen_user()
    assert_problem(client.patch(f"{USERS}/{user.id}", json={"active": active}, headers=auth(admin)), 422)
    assert client.patch(f"{USERS}/{user.id}", json={"active": False}, headers=auth(admin)).get_json()["active"] is False


def test_admin_creates_another_admin(client, auth, admin):
    response = client.post(USERS, json={"email": "second@example.com", "password": PASSWORD,
                                        "full_name": "Second Admin", "role": "admin"}, headers=auth(admin))
    assert response.status_code == 201 and response.get_json()["role"] == "admin"
