"""The factory and the plugin contract."""

import os
import subprocess
import sys

import pytest

from pawmanity.core.plugins import Plugin, PluginError, resolve_order
from tests.support import assert_problem, field_key_env

GREETING = "tests.plugins_for_tests.greeting"


def test_default_plugins_serve_their_routes(client):
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401


def test_an_app_with_a_subset_of_plugins(make_app):
    client = make_app(plugins=["blueprints.health"]).test_client()
    assert client.get("/api/v1/health").status_code == 200
    assert_problem(client.post("/api/v1/auth/login", json={}), 404)
    assert "/api/v1/auth/login" not in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_missing_requirement_fails_start_up_clearly(make_app):
    with pytest.raises(PluginError, match="plugin 'admin' requires 'auth', which is not in PLUGINS"):
        make_app(plugins=["blueprints.health", "blueprints.admin"])


def test_third_party_plugin_by_dotted_path(make_app):
    app = make_app(plugins=["blueprints.health", "blueprints.auth", GREETING])
    assert app.test_client().get("/api/v1/greeting/").get_json() == {"hello": "clinic"}
    assert set(app.extensions["pawmanity.plugins"]) == {"health", "auth", "greeting"}


def test_plugins_register_after_what_they_require(make_app):
    app = make_app(plugins=[GREETING, "blueprints.auth"])
    assert list(app.extensions["pawmanity.plugins"]) == ["auth", "greeting"]


@pytest.mark.parametrize("path, message", [
    ("tests.plugins_for_tests.no_plugin_object", "has no `plugin = Plugin(...)` object"),
    ("tests.plugins_for_tests.does_not_exist", "could not be imported"),
])
def test_bad_plugin_paths_fail_clearly(make_app, path, message):
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", "`")):
        make_app(plugins=[path])


def test_cycles_and_duplicates_are_refused():
    a = Plugin(name="a", register=lambda app: None, requires=("b",))
    b = Plugin(name="b", register=lambda app: None, requires=("a",))
    with pytest.raises(PluginError, match="cycle"):
        resolve_order([a, b])
    with pytest.raises(PluginError, match="two plugins are named 'a'"):
        resolve_order([a, a])


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(__file__)), env={**os.environ, **env})


def test_plugin_list_comes_from_the_environment():
    result = run_python(
        "import config; print(','.join(config.Config.PLUGINS))",
        PAWMANITY_PLUGINS=f" blueprints.health ,{GREETING},",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"blueprints.health,{GREETING}"


def test_nothing_connects_at_import_or_in_create_app(tmp_path):
    # Every service points at a closed port: building the app must still work, because nothing connects yet.
    code = "from pawmanity import create_app; app = create_app(); print(sorted(app.extensions['pawmanity.plugins']))"
    result = run_python(
        code,
        DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        REDIS_URL="redis://127.0.0.1:9/0",
        MONGO_URI="mongodb://127.0.0.1:9/",
        PAWMANITY_INSTANCE_DIR=str(tmp_path),
        PAWMANITY_ASYNC_MODE="threading",
        SECRET_KEY="a-production-secret-for-this-test-only-0123456789",
        **field_key_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "'auth'" in result.stdout


def test_ready_reports_each_dependency(client):
    body = client.get("/api/v1/ready").get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok" and body["checks"]["document_store"] == "ok"


def test_ready_is_503_when_a_dependency_is_down(make_app, monkeypatch):
    from pawmanity.core.extensions import docstore

    client = make_app().test_client()

    def unreachable():
        raise ConnectionError("no route to MongoDB")

    monkeypatch.setattr(docstore, "ping", unreachable)
    body = assert_problem(client.get("/api/v1/ready"), 503, "not_ready")
    assert body["checks"]["document_store"] == "unavailable: ConnectionError"
    assert body["checks"]["database"] == "ok"


def test_metrics_count_requests(client):
    client.get("/api/v1/health")
    text = client.get("/api/v1/metrics").get_data(as_text=True)
    assert 'pawmanity_http_requests_total{endpoint="/api/v1/health",method="GET",status="200"} 1.0' in text


def test_production_refuses_the_development_secret(tmp_path):
    code = "from pawmanity import create_app; create_app('production')"
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "JWT_SECRET_KEY")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(__file__)),
                            env={**env, "PAWMANITY_INSTANCE_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr
