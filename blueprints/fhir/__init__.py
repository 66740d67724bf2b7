"""FHIR R4B read and search API under /fhir (JSON, application/fhir+json), on the REST API's tokens and policy."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin

FHIR_TAG = {
    "name": "FHIR",
    "description": "A FHIR R4B (4.3.0) read and search API is served under /fhir, outside /api/v1: JSON only "
                   "(application/fhir+json), the same bearer tokens, access policy and audit as this API. "
                   "GET /fhir/metadata (no token needed) is its CapabilityStatement: the resource types, "
                   "interactions and search parameters it supports. Errors there are OperationOutcome resources, "
                   "not problem details, so its operations are described by the CapabilityStatement rather than "
                   "listed here.",
    "externalDocs": {"description": "FHIR R4B RESTful API", "url": "https://hl7.org/fhir/R4B/http.html"},
}


def register(app):
    from blueprints.fhir.routes import blp

    app.register_blueprint(blp)
    api.describe(lambda spec: spec.tag(FHIR_TAG))


plugin = Plugin(name="fhir", register=register, requires=("auth",))
