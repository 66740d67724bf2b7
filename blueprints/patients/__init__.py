"""Patients (people and animals), guardianship, weights and medical history."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.patients.routes import blp, doctor_blp, invitations_blp

    api.register_blueprint(blp)
    api.register_blueprint(doctor_blp)
    api.register_blueprint(invitations_blp)


plugin = Plugin(name="patients", register=register, requires=("auth",))
