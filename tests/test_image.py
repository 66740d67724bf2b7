"""The Docker image, checked without a Docker engine: what it needs is in its build context, the browser pages get
their Socket.IO client from a build stage, and compose gives the worker its own health check and a models volume.
"""

import os
from pathlib import Path

import pathspec
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent


def build_context():
    """The files `docker build .` sends, by the rules of .dockerignore."""
    ignored = pathspec.GitIgnoreSpec.from_lines((ROOT / ".dockerignore").read_text().splitlines())
    context = set()
    for folder, subfolders, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT)
        # Skip folders excluded whole (.venv, node_modules): walking them would take seconds.
        subfolders[:] = [name for name in subfolders if not ignored.match_file(f"{relative / name}/")]
        context.update(str(relative / name) for name in files if not ignored.match_file(str(relative / name)))
    return {name.removeprefix("./") for name in context}


def stages():
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    found, current = [], None
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            current = {"from": instruction["value"], "copies": [], "runs": []}
            found.append(current)
        elif instruction["instruction"] == "COPY":
            current["copies"].append(instruction["value"].split())
        elif instruction["instruction"] == "RUN":
            current["runs"].append(instruction["value"])
    return found


def test_every_file_copied_from_the_context_is_in_it():
    context = build_context()
    for stage in stages():
        for copy in stage["copies"]:
            if copy[0].startswith("--from="):
                continue
            for source in copy[:-1]:
                if source == ".":
                    continue
                assert source in context, f"{source} is copied but excluded from the build context"


def test_the_application_itself_is_in_the_context():
    context = build_context()
    needed = ["wsgi.py", "config.py", ".flaskenv", "requirements.txt", "migrations/env.py",
              "pawmanity/data/knowledge_base.yaml", "blueprints/consultations/static/chat.js",
              "blueprints/video_sessions/static/call.js", "blueprints/home/templates/home.html"]
    assert [name for name in needed if name not in context] == []
    assert not any(name.startswith(("node_modules/", ".venv/", ".git/", "instance/")) for name in context)


def test_the_socket_io_client_is_built_in_an_image_stage():
    assets, service = stages()[0], stages()[-1]
    assert ["package.json", "package-lock.json", "./"] in assets["copies"]
    assert any(run.startswith("npm ci") for run in assets["runs"])
    copied = [copy for copy in service["copies"] if copy[0] == f"--from={assets['from'].split()[-1]}"]
    # config.NODE_MODULES_DIR is <app>/node_modules; the pages serve socket.io-client/dist/socket.io.min.js.
    assert copied == [["--from=browser-assets", "/build/node_modules/socket.io-client/dist",
                       "/app/node_modules/socket.io-client/dist"]]


def test_compose_gives_the_worker_a_health_check_and_shares_trained_models():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker, app = compose["services"]["worker"], compose["services"]["app"]
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert "models:/app/instance/models" in worker["volumes"] and "models:/app/instance/models" in app["volumes"]
