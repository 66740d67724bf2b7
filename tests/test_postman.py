"""A Postman import of the served OpenAPI document has every field of every request.

The collection is made by openapi-to-postmanv2 (npm), the converter behind Postman's own import, through
scripts/postman_collection.js; then every parameter and every request-body field of every operation is looked for
in the request Postman would send. The converter runs at Postman's defaults, under which a document with more than
500 `$ref`s (ours) is faked only six levels deep, every `$ref`, object, list and field counting one.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "postman_collection.js"
CONVERTER = ROOT / "node_modules" / "openapi-to-postmanv2"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the Postman import needs it"),
    pytest.mark.skipif(not CONVERTER.exists(), reason="openapi-to-postmanv2 is not installed (run `npm install`)"),
]


def postman_collection(spec, tmp_path):
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(spec))
    done = subprocess.run(["node", str(SCRIPT), str(source)], capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def requests_of(items):
    for item in items:
        if "item" in item:
            yield from requests_of(item["item"])
        else:
            yield item["request"]


def postman_path(openapi_path):
    """/api/v1/patients/{patient_id} as Postman writes it: api, v1, patients, :patient_id (a variable inside a
    segment, as in {secret}.ics, becomes {{secret}}.ics)."""
    return tuple(f":{part[1:-1]}" if re.fullmatch(r"\{\w+\}", part) else re.sub(r"\{(\w+)\}", r"{{\1}}", part)
                 for part in openapi_path.strip("/").split("/"))


def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def field_paths(spec, schema, prefix=(), sent=None):
    """Every property path of a request body schema, nested objects and array items included (of a body with several
    forms told apart by one property's value, the form the import chose: `sent` is the value the import wrote)."""
    schema = resolve(spec, schema)
    for part in schema.get("allOf", []) + chosen_forms(schema.get("oneOf", []), sent) + schema.get("anyOf", []):
        yield from field_paths(spec, part, prefix, sent)
    if schema.get("type") == "array" and "items" in schema:
        yield from field_paths(spec, schema["items"], (*prefix, 0), sent[0] if isinstance(sent, list) and sent else None)
    for name, child in schema.get("properties", {}).items():
        if resolve(spec, child).get("maxItems") == 0 and name not in schema.get("required", ()):
            # A list that can only be empty, and may be left out (the sync push's pull-only tables): the converter's
            # faker drops an optional empty list, and leaving it out is all a client can say with it anyway.
            continue
        yield (*prefix, name)
        yield from field_paths(spec, child, (*prefix, name), sent.get(name) if isinstance(sent, dict) else None)


def chosen_forms(alternatives, sent):
    """The alternatives whose fields an example must show. When each fixes one property to a value of its own (sync
    /resolve's `table`: a patient's columns or a medical record's), one request can only be one of them: the one
    whose value the import sent or, where it wrote a placeholder (`<string>`), the first, which is the one the
    converter builds its example from. Otherwise all of them (doctor_id or specialty: both are shown)."""
    def fixed(alternative):
        return {name: child["enum"][0] for name, child in alternative.get("properties", {}).items()
                if len(child.get("enum", ())) == 1}

    shared = set.intersection(*(set(fixed(alternative)) for alternative in alternatives)) if alternatives else set()
    for name in sorted(shared):
        values = [fixed(alternative)[name] for alternative in alternatives]
        if len(set(values)) == len(values):
            chosen = sent.get(name) if isinstance(sent, dict) else None
            return [alternatives[values.index(chosen) if chosen in values else 0]]
    return alternatives


def has_path(value, path):
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not value:
                return False
            value = value[0]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return False
    return True


def missing_fields(spec, path, method, operation, request):
    missing = []
    parameters = [*spec["paths"][path].get("parameters", []), *operation.get("parameters", [])]
    for parameter in parameters:
        name, where = parameter["name"], parameter["in"]
        if where == "query":
            found = name in {query["key"] for query in request["url"].get("query", [])}
        elif where == "path":
            found = f":{name}" in request["url"]["path"] or any(f"{{{{{name}}}}}" in part
                                                                for part in request["url"]["path"])
        else:
            found = name.lower() in {header["key"].lower() for header in request.get("header", [])}
        if not found:
            missing.append(f"{where} parameter {name}")
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        body = request.get("body") or {}
        if media_type == "multipart/form-data":
            sent = {part["key"] for part in body.get("formdata", [])}
            missing += [f"form field {name}" for name in resolve(spec, content["schema"]).get("properties", {})
                        if name not in sent]
        else:
            sent = json.loads(body.get("raw") or "null")
            missing += [f"body field {'.'.join(map(str, field))}"
                        for field in field_paths(spec, content["schema"], sent=sent) if not has_path(sent, field)]
            missing += [f"body value {'.'.join(map(str, where))}: {value}" for where, value in given_up(sent)]
    return missing


def given_up(value, where=()):
    """Where the converter wrote its own error in place of a value, as it does for a schema nested deeper than its
    limit (`<Error: Too many levels of nesting to fake this schema>`): a field present in name only, or a list of
    ids whose items were lost, is a field lost too."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from given_up(child, (*where, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from given_up(child, (*where, index))
    elif isinstance(value, str) and value.startswith("<Error"):
        yield where, value


def test_a_postman_import_has_every_field_of_every_request(client, tmp_path):
    spec = client.get("/api/v1/openapi.json").get_json()
    collection = postman_collection(spec, tmp_path)
    imported = {(request["method"], tuple(request["url"]["path"])): request
                for request in requests_of(collection["item"])}
    problems, checked = [], 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            request = imported.get((method.upper(), postman_path(path)))
            if request is None:
                problems.append(f"{method.upper()} {path}: not imported")
                continue
            checked += 1
            problems += [f"{method.upper()} {path}: {what}"
                         for what in missing_fields(spec, path, method, operation, request)]
    assert checked > 100 and not problems, "\n".join(problems)
