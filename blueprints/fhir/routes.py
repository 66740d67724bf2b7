"""Thin FHIR views: check the token, call pawmanity.fhir.server, wrap the result as FHIR JSON.

Routes are made from the server's registry (one search and one read route per resource type), so the
CapabilityStatement served at /fhir/metadata lists exactly the routes that exist. Every error under /fhir, a bad
token included, is an OperationOutcome rather than the REST API's problem+json.
"""

from http import HTTPStatus
from urllib.parse import urlencode

import jwt as pyjwt
from flask import Blueprint, current_app, json, request
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from pawmanity.core.errors import DomainError
from pawmanity.fhir import resources, server
from pawmanity.fhir.search import COUNT, OFFSET, FhirError
from pawmanity.identity.security import current_actor

FHIR_MIMETYPE = "application/fhir+json"
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 413: "too-costly", 415: "not-supported", 422: "invariant",
               429: "throttled", 503: "transient"}

blp = Blueprint("fhir", __name__, url_prefix="/fhir")


def fhir_response(body, status=200, headers=None):
    response = current_app.response_class(json.dumps(body), status=status, mimetype=FHIR_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def base_url():
    return request.url_root.rstrip("/") + blp.url_prefix


def context():
    return server.Context(api_base=request.url_root.rstrip("/") + "/api/v1")


def signed_in_actor():
    verify_jwt_in_request()
    return current_actor()


@blp.get("/metadata")
def metadata():
    return fhir_response(server.capability_statement(base_url()))


def search_view(type_name):
    def view():
        actor = signed_in_actor()
        total, found, search = server.search(actor, type_name, request.args, context())
        return fhir_response(searchset(type_name, total, found, search))

    view.__name__ = f"search_{type_name}"
    return view


def read_view(type_name):
    def view(ident):
        actor = signed_in_actor()
        return fhir_response(server.read(actor, type_name, ident, context()))

    view.__name__ = f"read_{type_name}"
    return view


for _name, _kind in server.RESOURCE_TYPES.items():
    if "search-type" in _kind.interactions:
        blp.add_url_rule(f"/{_name}", view_func=search_view(_name), methods=["GET"])
    if "read" in _kind.interactions:
        blp.add_url_rule(f"/{_name}/<ident>", view_func=read_view(_name), methods=["GET"])


@blp.get("/Patient/<ident>/$everything")
def patient_everything(ident):
    actor = signed_in_actor()
    found = server.everything(actor, ident, context())
    return fhir_response(bundle(found, total=len(found), links=[("self", request.url)]))


@blp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@blp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_served(rest):
    """Anything else under /fhir: an unknown type or a write this read-only server does not do."""
    first = rest.split("/", 1)[0]
    if request.method != "GET" and (first in server.RESOURCE_TYPES or first == "metadata"):
        raise FhirError(f"{request.method} is not supported here: this FHIR API is read-only.", status=405,
                        issue_code="not-supported", code="method_not_allowed")
    if first in server.RESOURCE_TYPES:
        raise FhirError(f"Nothing is served at /fhir/{rest}; see /fhir/metadata.", status=404,
                        issue_code="not-found", code="not_found")
    raise FhirError(f"This server serves no '{first}' resources; see /fhir/metadata.", status=404,
                    issue_code="not-supported", code="unknown_resource_type")


def searchset(type_name, total, found, search):
    links = [("self", page_url(search.offset, search.count))]
    if search.offset + search.count < total:
        links.append(("next", page_url(search.offset + search.count, search.count)))
    if search.offset > 0:
        links.append(("previous", page_url(max(0, search.offset - search.count), search.count)))
    return bundle(found, total=total, links=links)


def page_url(offset, count):
    args = [(key, value) for key, value in request.args.items(multi=True) if key not in (COUNT, OFFSET)]
    args += [(COUNT, str(count)), (OFFSET, str(offset))]
    return f"{base_url()}/{request.path.rsplit('/', 1)[-1]}?{urlencode(args)}"


def bundle(found, *, total, links):
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links],
        "entry": [{"fullUrl": f"{base_url()}/{resource['resourceType']}/{resource['id']}",
                   "resource": resource, "search": {"mode": "match"}} for resource in found],
    }


@blp.errorhandler(Exception)
def operation_outcome(error):
    """Every failure under /fhir as an OperationOutcome with the right status."""
    headers = {}
    if isinstance(error, FhirError):
        status, issue, code, detail = error.status, error.issue_code, error.code, error.detail
    elif isinstance(error, DomainError):
        status, code, detail = error.status, error.code, error.detail
        issue, headers = ISSUE_CODES.get(status, "processing"), error.headers
    elif isinstance(error, (JWTExtendedException, pyjwt.PyJWTError)):
        status, issue, code = 401, "login", "invalid_token"
        detail = "Send a valid access token as 'Authorization: Bearer <token>'."
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, ValidationError):
        status, issue, code, detail = 400, "invalid", "validation_failed", str(error.messages)
    elif isinstance(error, HTTPException) and error.code and error.code < 500:
        status, code, detail = error.code, None, error.description
        issue, headers = ISSUE_CODES.get(status, "processing"), dict(error.get_headers())
        headers.pop("Content-Type", None)
    else:
        current_app.logger.exception("unhandled error", exc_info=error)
        status, issue, code, detail = 500, "exception", "internal_error", "Something went wrong on our side."
    body = resources.operation_outcome(detail or HTTPStatus(status).phrase, issue, code=code)
    return fhir_response(body, status, headers)
