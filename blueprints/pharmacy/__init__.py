"""Pharmacies, medicines, stock with its ledger, the nearest-pharmacy search, prescriptions' reservations."""

from pawmanity.core.extensions import api
from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.pharmacy.routes import blueprints

    for blueprint in blueprints:
        api.register_blueprint(blueprint)


plugin = Plugin(name="pharmacy", register=register, requires=("auth", "consultations"))
