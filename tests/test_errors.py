"""One error shape for every failure, and never a 500 or a trace for bad input."""

import pytest

from pawmanity.core.api import Blueprint
from pawmanity.core.errors import Conflict
from pawmanity.core.extensions import api
from tests.support import assert_problem


def test_unknown_route_is_a_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["title"] == "Not Found"


def test_wrong_method_is_a_problem_with_allow(client):
    response = client.delete("/api/v1/auth/login")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json(client):
    response = client.post("/api/v1/auth/login", data='{"email": "a@example.com",', content_type="application/json")
    assert_problem(response, 400, "malformed_json")


def test_no_body_where_one_is_required_gets_422_before_anything_else(client, gen_user, auth, gen_patient):
    """A body whose fields are all optional is still a body: with none, a PATCH is refused as invalid, not judged by
    its If-Match (412) or applied as an empty change (schemathesis's missing-body case found both)."""
    owner = gen_user()
    headers = auth(owner)
    body = assert_problem(client.put("/api/v1/notifications/preferences", headers=headers), 422, "validation_failed")
    assert body["errors"] == {"_schema": ["This operation takes a JSON body; none came."]}
    pet = gen_patient(owner)
    assert_problem(client.patch(f"/api/v1/patients/{pet.id}", headers={**headers, "If-Match": "0"}), 422,
                   "validation_failed")


def test_body_that_is_not_json_gets_415(client):
    response = client.post("/api/v1/auth/login", data="email=a@example.com&password=x",
                           content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_oversize_body_gets_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/api/v1/auth/register", data="x" * 4096, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


def test_validation_errors_name_each_field(client):
    body = assert_problem(client.post("/api/v1/auth/register", json={"email": "nope", "surprise": 1}), 422)
    assert set(body["errors"]) >= {"email", "password", "full_name", "role", "surprise"}
    assert all(isinstance(messages, list) for messages in body["errors"].values())


def test_unknown_query_parameters_are_refused(client, gen_user, auth):
    admin = gen_user(role="admin")
    body = assert_problem(client.get("/api/v1/admin/users?colour=blue", headers=auth(admin)), 422)
    assert "colour" in body["errors"]


@pytest.fixture
def app_with_test_routes(make_app):
    app = make_app()
    blp = Blueprint("boom", __name__, url_prefix="/api/v1/test")

    @blp.route("/crash")
    def crash():
        raise RuntimeError("secret internal detail")

    @blp.route("/conflict")
    def conflict():
        raise Conflict("That slot was just taken.", code="slot_taken")

    api.register_blueprint(blp)
    return app


def test_unexpected_errors_are_a_500_problem_without_a_trace(app_with_test_routes):
    response = app_with_test_routes.test_client().get("/api/v1/test/crash")
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["detail"]


def test_domain_errors_keep_their_code(app_with_test_routes):
    response = app_with_test_routes.test_client().get("/api/v1/test/conflict")
    body = assert_problem(response, 409, "slot_taken")
    assert body["detail"] == "That slot was just taken."
    assert "errors" not in body
