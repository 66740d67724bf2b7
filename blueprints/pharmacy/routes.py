from blueprints.pharmacy.schemas import (
    MedicineIn,
    MedicineOut,
    MedicineQuery,
    MovementIn,
    MovementOut,
    MovementQuery,
    PharmacyHitOut,
    PharmacyIn,
    PharmacyOut,
    PharmacyPatch,
    PharmacySearchQuery,
    PrescriptionOut,
    PrescriptionQuery,
    ReservationIn,
    ReservationOut,
    ReservationQuery,
    StaffIn,
    StaffOut,
    StockItemOut,
    StockSettingIn,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import PageQuery, page_of
from pawmanity.identity.security import current_actor
from pawmanity.pharmacy import pharmacies, prescriptions

blp = Blueprint("pharmacies", __name__, url_prefix=f"{API_PREFIX}/pharmacies",
                description="Pharmacies, their staff and stock, and the nearest pharmacy with a medicine")
medicines_blp = Blueprint("medicines", __name__, url_prefix=f"{API_PREFIX}/medicines",
                          description="The medicine catalogue")
prescriptions_blp = Blueprint("prescriptions", __name__, url_prefix=f"{API_PREFIX}/prescriptions",
                              description="Prescriptions from ended consultations, and reserving them")
reservations_blp = Blueprint("pharmacy_reservations", __name__, url_prefix=f"{API_PREFIX}/reservations",
                             description="Reservations at pharmacies: cancel, dispense")
blueprints = (blp, medicines_blp, prescriptions_blp, reservations_blp)


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(PharmacySearchQuery, location="query")
@blp.response(200, page_of(PharmacyHitOut))
@blp.errors(404)
def search_pharmacies(query):
    """Pharmacies with `medicine` available now; with `near=lat,lon`, nearest first within `radius_km` (25)."""
    near = query.pop("near", None)
    result = pharmacies.search(medicine_id=query.get("medicine"), near=near,
                               radius_km=query.get("radius_km"), page=query["page"],
                               per_page=query["per_page"])
    result["items"] = [{**PharmacyOut().dump(pharmacy), "distance_km": None if km is None else round(km, 3),
                        "available": available} for pharmacy, km, available in result["items"]]
    return result


@blp.route("", methods=["POST"])
@blp.auth_required("admin")
@blp.arguments(PharmacyIn)
@blp.response(201, PharmacyOut)
@blp.errors(415)
def create_pharmacy(data):
    return pharmacies.create_pharmacy(current_actor(), data)


@blp.route("/mine", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(PharmacyOut))
def my_pharmacies(query):
    """The pharmacies you work at, by name."""
    return pharmacies.my_pharmacies(current_actor(), **query)


@blp.route("/<uuid:pharmacy_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, PharmacyOut)
@blp.errors(404)
def get_pharmacy(pharmacy_id):
    return pharmacies.get_pharmacy(pharmacy_id)


@blp.route("/<uuid:pharmacy_id>", methods=["PATCH"])
@blp.auth_required()
@blp.arguments(PharmacyPatch)
@blp.response(200, PharmacyOut)
@blp.errors(404, 415)
def update_pharmacy(changes, pharmacy_id):
    """Staff and admins change the pharmacy's details and opening hours."""
    return pharmacies.update_pharmacy(current_actor(), pharmacy_id, changes)


@blp.route("/<uuid:pharmacy_id>/staff", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(StaffOut))
@blp.errors(404)
def list_staff(query, pharmacy_id):
    """The pharmacy's staff, by name (staff)."""
    return pharmacies.list_staff(current_actor(), pharmacy_id, **query)


@blp.route("/<uuid:pharmacy_id>/staff", methods=["POST"])
@blp.auth_required("admin")
@blp.arguments(StaffIn)
@blp.response(201, StaffOut)
@blp.errors(404, 409, 415)
def add_staff(data, pharmacy_id):
    """Make an account a pharmacist of this pharmacy (membership)."""
    return pharmacies.add_staff(current_actor(), pharmacy_id, data["user_id"])


@blp.route("/<uuid:pharmacy_id>/stock", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(StockItemOut))
@blp.errors(404)
def list_stock(query, pharmacy_id):
    """Stock per medicine with its lots, by medicine name and strength (staff)."""
    return pharmacies.list_stock(current_actor(), pharmacy_id, **query)


@blp.route("/<uuid:pharmacy_id>/stock/<uuid:medicine_id>", methods=["PUT"])
@blp.auth_required()
@blp.arguments(StockSettingIn)
@blp.response(200, StockItemOut)
@blp.errors(404, 415)
def configure_stock(data, pharmacy_id, medicine_id):
    """Stock a medicine and set its reorder point (staff)."""
    return pharmacies.configure_stock(current_actor(), pharmacy_id, medicine_id, data["reorder_point"])


@blp.route("/<uuid:pharmacy_id>/stock/movements", methods=["POST"])
@blp.auth_required()
@blp.arguments(MovementIn)
@blp.response(201, MovementOut)
@blp.alt_response(200, schema=MovementOut, description="The same idempotency key again: the first movement")
@blp.errors(404, 409, 415)
def add_movement(data, pharmacy_id):
    """Receive a lot, or adjust a lot's count (staff). The idempotency key makes a retry record once."""
    movement, replayed = pharmacies.add_movement(current_actor(), pharmacy_id, data)
    return movement, 200 if replayed else 201


@blp.route("/<uuid:pharmacy_id>/stock/movements", methods=["GET"])
@blp.auth_required()
@blp.arguments(MovementQuery, location="query")
@blp.response(200, page_of(MovementOut))
@blp.errors(404)
def list_movements(query, pharmacy_id):
    """The ledger, newest first (staff)."""
    return pharmacies.list_movements(current_actor(), pharmacy_id, **query)


@blp.route("/<uuid:pharmacy_id>/reservations", methods=["GET"])
@blp.auth_required()
@blp.arguments(ReservationQuery, location="query")
@blp.response(200, page_of(ReservationOut))
@blp.errors(404)
def pharmacy_reservations(query, pharmacy_id):
    return prescriptions.pharmacy_reservations(current_actor(), pharmacy_id, **query)


@medicines_blp.route("", methods=["GET"])
@medicines_blp.auth_required()
@medicines_blp.arguments(MedicineQuery, location="query")
@medicines_blp.response(200, page_of(MedicineOut))
def list_medicines(query):
    return pharmacies.list_medicines(**query)


@medicines_blp.route("", methods=["POST"])
@medicines_blp.auth_required("admin")
@medicines_blp.arguments(MedicineIn)
@medicines_blp.response(201, MedicineOut)
@medicines_blp.errors(409, 415)
def create_medicine(data):
    return pharmacies.create_medicine(current_actor(), data)


@medicines_blp.route("/<uuid:medicine_id>", methods=["GET"])
@medicines_blp.auth_required()
@medicines_blp.response(200, MedicineOut)
@medicines_blp.errors(404)
def get_medicine(medicine_id):
    return pharmacies.get_medicine(medicine_id)


@prescriptions_blp.route("", methods=["GET"])
@prescriptions_blp.auth_required()
@prescriptions_blp.arguments(PrescriptionQuery, location="query")
@prescriptions_blp.response(200, page_of(PrescriptionOut))
@prescriptions_blp.errors(404)
def list_prescriptions(query):
    return prescriptions.list_prescriptions(current_actor(), query.pop("patient_id"), **query)


@prescriptions_blp.route("/<uuid:prescription_id>", methods=["GET"])
@prescriptions_blp.auth_required()
@prescriptions_blp.response(200, PrescriptionOut)
@prescriptions_blp.errors(404)
def get_prescription(prescription_id):
    return prescriptions.get_prescription(current_actor(), prescription_id)


@prescriptions_blp.route("/<uuid:prescription_id>/reservations", methods=["POST"])
@prescriptions_blp.auth_required()
@prescriptions_blp.arguments(ReservationIn)
@prescriptions_blp.response(201, ReservationOut)
@prescriptions_blp.errors(403, 404, 409, 415)
def reserve(data, prescription_id):
    """Hold the prescribed medicine at a pharmacy (guardians) until the time limit; 409 insufficient_stock."""
    return prescriptions.reserve(current_actor(), prescription_id, data["pharmacy_id"])


@reservations_blp.route("/<uuid:reservation_id>", methods=["GET"])
@reservations_blp.auth_required()
@reservations_blp.response(200, ReservationOut)
@reservations_blp.errors(404)
def get_reservation(reservation_id):
    return prescriptions.get_reservation(current_actor(), reservation_id)


@reservations_blp.route("/<uuid:reservation_id>", methods=["DELETE"])
@reservations_blp.auth_required()
@reservations_blp.response(200, ReservationOut)
@reservations_blp.errors(404, 409)
def cancel_reservation(reservation_id):
    """Release the held units (the guardian, or the pharmacy)."""
    return prescriptions.cancel(current_actor(), reservation_id)


@reservations_blp.route("/<uuid:reservation_id>/dispense", methods=["POST"])
@reservations_blp.auth_required()
@reservations_blp.response(200, ReservationOut)
@reservations_blp.errors(404, 409)
def dispense(reservation_id):
    """Hand the medicine over (the pharmacy's staff); first-expiring lot first, expired lots never."""
    return prescriptions.dispense(current_actor(), reservation_id)


