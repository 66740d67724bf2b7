"""FHIR R4B read and search API under /fhir (JSON, application/fhir+json), on the REST API's tokens and policy."""

from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.fhir.routes import blp

    app.register_blueprint(blp)


plugin = Plugin(name="fhir", register=register, requires=("auth",))
