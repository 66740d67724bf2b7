from blueprints.admin.schemas import (
    AdminUserCreateIn,
    AdminUserOut,
    AdminUserUpdateIn,
    AuditEventOut,
    AuditQuery,
    DoctorVerifiedOut,
    UserListQuery,
)
from pawmanity.audit import trail
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.database import paginate
from pawmanity.core.schemas import page_of
from pawmanity.identity import accounts
from pawmanity.identity.security import current_actor
from pawmanity.scheduling import doctors

blp = Blueprint("admin", __name__, url_prefix=f"{API_PREFIX}/admin", description="Administration (admins only)")


@blp.route("/users", methods=["GET"])
@blp.auth_required("admin")
@blp.arguments(UserListQuery, location="query")
@blp.response(200, page_of(AdminUserOut))
def list_users(query):
    """All accounts, newest first; filter by role, active, or a search: a whole e-mail address, or part of a name
    (addresses are stored encrypted and match only whole)."""
    page, per_page = query.pop("page"), query.pop("per_page")
    return paginate(accounts.list_users_query(role=query.get("role"), active=query.get("active"),
                                              search=query.get("q")), page=page, per_page=per_page)


@blp.route("/users", methods=["POST"])
@blp.auth_required("admin")
@blp.idempotent()
@blp.arguments(AdminUserCreateIn)
@blp.response(201, AdminUserOut)
@blp.errors(409, 415)
def create_user(data):
    """Create an account of any role, admins included."""
    return accounts.create_user_as_admin(actor=current_actor(), **data)


@blp.route("/users/<uuid:user_id>", methods=["PATCH"])
@blp.auth_required("admin")
@blp.arguments(AdminUserUpdateIn)
@blp.response(200, AdminUserOut)
@blp.errors(404, 409, 415)
def update_user(changes, user_id):
    """Change an account's role or active flag. Deactivating ends its sessions at once."""
    return accounts.admin_update_user(user_id, changes, current_actor())


@blp.route("/doctors/<uuid:doctor_id>/verify", methods=["POST"])
@blp.auth_required("admin")
@blp.response(200, DoctorVerifiedOut)
@blp.errors(404)
def verify_doctor(doctor_id):
    """Verify a doctor's profile (licence checked): they become listed and bookable."""
    return doctors.verify(current_actor(), doctor_id)


@blp.route("/audit", methods=["GET"])
@blp.auth_required("admin")
@blp.arguments(AuditQuery, location="query")
@blp.response(200, page_of(AuditEventOut))
def list_audit(query):
    """The audit trail, newest first."""
    page, per_page = query.pop("page"), query.pop("per_page")
    return paginate(trail.list_events_query(**query), page=page, per_page=per_page)
