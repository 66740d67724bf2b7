"""Patients' rights: exports of everything held (a FHIR Bundle and the files, in one archive) and erasure."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.privacy.routes import erasures, exports

    api.register_blueprint(exports)
    api.register_blueprint(erasures)


plugin = Plugin(name="privacy", register=register, requires=("auth", "patients", "fhir"))
