"""Booking, the appointment lifecycle, reschedules and the calendar feed."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.appointments.routes import blp, doctor_blp

    api.register_blueprint(blp)
    api.register_blueprint(doctor_blp)


plugin = Plugin(name="appointments", register=register, requires=("auth", "patients", "doctors"))
