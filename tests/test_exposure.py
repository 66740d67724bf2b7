"""What responses reveal and allow: no sniffing, no caching of API data, no framing, no open metrics."""

import base64
import hashlib
import re

import pytest

from tests.support import assert_problem


def test_api_json_is_not_sniffed_nor_cached(client, auth, gen_user, gen_patient):
    owner = gen_user()
    pet = gen_patient(owner)
    for response in (client.get(f"/api/v1/patients/{pet.id}", headers=auth(owner)),
                     client.get("/api/v1/auth/me", headers=auth(owner)),
                     client.get("/api/v1/patients/00000000-0000-0000-0000-000000000000", headers=auth(owner)),
                     client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong"})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store", response.status_code


@pytest.mark.parametrize("path", ["/chat", "/video"])
def test_pages_cannot_be_framed(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_docs_page_has_a_policy_and_no_online_validator(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    # The page's inline script runs because its hash is allowed, and only that script.
    script = re.search(rb"<script>(.*?)</script>", response.data, re.S).group(1)
    assert f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'" in policy
    assert b'"validatorUrl": null' in response.data


def test_metrics_need_the_token_in_production(make_app):
    client = make_app(METRICS_OPEN_WITHOUT_TOKEN=False, METRICS_TOKEN="scrape-secret").test_client()
    assert_problem(client.get("/api/v1/metrics"), 401, "metrics_token_required")
    assert_problem(client.get("/api/v1/metrics", headers={"Authorization": "Bearer nope"}), 401)
    response = client.get("/api/v1/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200 and b"pawmanity_http_requests_total" in response.data


def test_metrics_without_a_token_configured_are_not_served_in_production(make_app):
    client = make_app(METRICS_OPEN_WITHOUT_TOKEN=False, METRICS_TOKEN=None).test_client()
    assert_problem(client.get("/api/v1/metrics"), 404)


def test_production_config_closes_metrics_by_default():
    from config import ProductionConfig

    assert ProductionConfig.METRICS_OPEN_WITHOUT_TOKEN is False
