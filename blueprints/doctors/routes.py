from datetime import timedelta

from blueprints.doctors.schemas import (
    AvailabilityIn,
    DoctorListQuery,
    DoctorOut,
    DoctorProfileIn,
    SlotOut,
    SlotQuery,
    TimeOffIn,
    TimeOffOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.schemas import PageQuery, page_of
from pawmanity.identity.security import current_actor, optional_identity
from pawmanity.scheduling import doctors

blp = Blueprint("doctors", __name__, url_prefix=f"{API_PREFIX}/doctors",
                description="The doctor directory, profiles, availability and slots")


@blp.route("", methods=["GET"])
@blp.arguments(DoctorListQuery, location="query")
@blp.response(200, page_of(DoctorOut))
def list_doctors(query):
    """Verified doctors, filtered by specialty and by a species they treat. No sign-in needed."""
    page, per_page = query.pop("page"), query.pop("per_page")
    return paginate(doctors.directory_query(**query), page=page, per_page=per_page)


@blp.route("/me", methods=["GET"])
@blp.auth_required("doctor")
@blp.response(200, DoctorOut)
@blp.errors(404)
def get_my_profile():
    return doctors.own_profile(current_actor())


@blp.route("/me", methods=["PUT"])
@blp.auth_required("doctor")
@blp.arguments(DoctorProfileIn)
@blp.response(200, DoctorOut)
@blp.alt_response(201, schema=DoctorOut, description="Profile created")
@blp.errors(415)
def put_my_profile(data):
    """Create or replace your profile. Patients can book you once an admin has verified it."""
    profile, created = doctors.upsert_profile(current_actor(), data)
    return profile, 201 if created else 200


@blp.route("/me/availability", methods=["PUT"])
@blp.auth_required("doctor")
@blp.arguments(AvailabilityIn)
@blp.response(200, DoctorOut)
@blp.errors(404, 415)
def put_availability(data):
    """Replace your weekly hours (in your profile's timezone), slot length and buffer between slots."""
    return doctors.set_availability(current_actor(), **data)


@blp.route("/me/time-off", methods=["GET"])
@blp.auth_required("doctor")
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(TimeOffOut))
@blp.errors(404)
def list_time_off(query):
    """Your current and future time off, earliest first."""
    return doctors.list_time_off(current_actor(), **query)


@blp.route("/me/time-off", methods=["POST"])
@blp.auth_required("doctor")
@blp.idempotent()
@blp.arguments(TimeOffIn)
@blp.response(201, TimeOffOut)
@blp.errors(404, 409, 415)
def add_time_off(data):
    """Block out time. Refused while active appointments fall in it."""
    return doctors.add_time_off(current_actor(), **data)


@blp.route("/me/time-off/<uuid:time_off_id>", methods=["DELETE"])
@blp.auth_required("doctor")
@blp.response(204)
@blp.errors(404)
def delete_time_off(time_off_id):
    doctors.delete_time_off(current_actor(), time_off_id)


@blp.route("/<uuid:doctor_id>", methods=["GET"])
@blp.response(200, DoctorOut)
@blp.errors(404)
def get_doctor(doctor_id):
    optional_identity()
    return doctors.get_profile(current_actor(), doctor_id)


@blp.route("/<uuid:doctor_id>/slots", methods=["GET"])
@blp.arguments(SlotQuery, location="query")
@blp.response(200, page_of(SlotOut))
@blp.errors(404)
def free_slots(query, doctor_id):
    """Free slots between `from` and `to` (at most 31 days), computed from the doctor's hours."""
    optional_identity()
    start = query.get("start") or utcnow()
    end = query.get("end") or start + timedelta(days=7)
    free = doctors.slots(current_actor(), doctor_id, start=start, end=end)  # computed, earliest first: paged here
    offset = (query["page"] - 1) * query["per_page"]
    return {"items": free[offset:offset + query["per_page"]], "page": query["page"], "per_page": query["per_page"],
            "total": len(free)}
