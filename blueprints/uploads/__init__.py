"""Uploads: clinical photos, documents and DICOM images for a patient, checked, cleaned and served safely."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.uploads.routes import blp

    api.register_blueprint(blp)


plugin = Plugin(name="uploads", register=register, requires=("auth", "patients"))
