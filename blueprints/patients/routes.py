from blueprints.patients.schemas import (
    AcceptInvitationIn,
    GuardianOut,
    InvitationIn,
    InvitationOut,
    PatientIn,
    PatientListQuery,
    PatientOut,
    PatientPatch,
    RecordIn,
    RecordListQuery,
    RecordOut,
    RecordPatch,
    RecordVersionOut,
    WeightIn,
    WeightOut,
)
from pawmanity.care import patients, records
from pawmanity.core.api import API_PREFIX, IF_MATCH_DOC, Blueprint, if_match_version, with_etag
from pawmanity.core.schemas import PageQuery, page_of
from pawmanity.identity.security import current_actor

blp = Blueprint("patients", __name__, url_prefix=f"{API_PREFIX}/patients",
                description="Patients, their guardians and their medical history")
doctor_blp = Blueprint("doctor_patients", __name__, url_prefix=f"{API_PREFIX}/doctors/me",
                       description="A doctor's own patients")
invitations_blp = Blueprint("guardian_invitations", __name__, url_prefix=f"{API_PREFIX}/guardian-invitations",
                            description="Accepting an invitation to become a guardian")


@blp.route("", methods=["POST"])
@blp.auth_required("patient", "admin")
@blp.idempotent()
@blp.arguments(PatientIn)
@blp.response(201, PatientOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.errors(415)
def create_patient(data):
    """Add a person or an animal you care for; you become its primary guardian."""
    patient = patients.create_patient(current_actor(), data)
    return with_etag(patient, patient.version, 201)


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(PatientListQuery, location="query")
@blp.response(200, page_of(PatientOut))
def list_patients(query):
    """Patients you may see: those you guard; for doctors, those with appointments with you. `microchip_id` finds
    one by its exact chip number."""
    return patients.list_patients(current_actor(), **query)


@blp.route("/<uuid:patient_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, PatientOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.errors(404)
def get_patient(patient_id):
    patient = patients.get_patient(current_actor(), patient_id)
    return with_etag(patient, patient.version)


@blp.route("/<uuid:patient_id>", methods=["PATCH"])
@blp.auth_required()
@blp.arguments(PatientPatch)
@blp.response(200, PatientOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.doc(parameters=[IF_MATCH_DOC])
@blp.errors(403, 404, 412, 415)
def update_patient(changes, patient_id):
    """Change a patient's profile (guardians and admins). If-Match is checked when sent."""
    patient = patients.update_patient(current_actor(), patient_id, changes,
                                      expected_version=if_match_version(required=False))
    return with_etag(patient, patient.version)


@blp.route("/<uuid:patient_id>", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(403, 404)
def archive_patient(patient_id):
    """Remove a patient from lists. Nothing is erased: the medical history is kept."""
    patients.archive_patient(current_actor(), patient_id)


@blp.route("/<uuid:patient_id>/weights", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(WeightOut))
@blp.errors(404)
def list_weights(query, patient_id):
    """Weight history, newest first."""
    return patients.list_weights(current_actor(), patient_id, **query)


@blp.route("/<uuid:patient_id>/weights", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(WeightIn)
@blp.response(201, WeightOut)
@blp.errors(404, 412, 415)
def add_weight(data, patient_id):
    return patients.add_weight(current_actor(), patient_id, data["weight_kg"], data["measured_at"])


@blp.route("/<uuid:patient_id>/guardians", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(GuardianOut))
@blp.errors(403, 404)
def list_guardians(query, patient_id):
    """The patient's guardians, longest-standing first (guardians and admins)."""
    return patients.list_guardians(current_actor(), patient_id, **query)


@blp.route("/<uuid:patient_id>/guardians/<uuid:user_id>", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(403, 404, 409)
def remove_guardian(patient_id, user_id):
    """Remove a co-guardian (primary guardian or admin), or leave yourself."""
    patients.remove_guardian(current_actor(), patient_id, user_id)


@blp.route("/<uuid:patient_id>/invitations", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(InvitationIn)
@blp.response(201, InvitationOut)
@blp.errors(403, 404, 415, 429)
def invite_guardian(data, patient_id):
    """E-mail a single-use, expiring code that lets another account become a guardian."""
    return patients.invite_guardian(current_actor(), patient_id, **data)


@invitations_blp.route("/accept", methods=["POST"])
@invitations_blp.auth_required()
@invitations_blp.arguments(AcceptInvitationIn)
@invitations_blp.response(200, PatientOut)
@invitations_blp.errors(404, 409, 415)
def accept_invitation(data):
    """Accept with the code from the e-mail, signed in as the invited address."""
    return patients.accept_invitation(current_actor(), data["token"])


@blp.route("/<uuid:patient_id>/records", methods=["GET"])
@blp.auth_required()
@blp.arguments(RecordListQuery, location="query")
@blp.response(200, page_of(RecordOut))
@blp.errors(404)
def list_records(query, patient_id):
    """Medical history, newest first."""
    return records.list_records(current_actor(), patient_id, **query)


@blp.route("/<uuid:patient_id>/records", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(RecordIn)
@blp.response(201, RecordOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.errors(404, 415)
def create_record(data, patient_id):
    record = records.create_record(current_actor(), patient_id, data)
    return with_etag(record, record.version, 201)


@blp.route("/<uuid:patient_id>/records/<uuid:record_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, RecordOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.errors(404)
def get_record(patient_id, record_id):
    record = records.get_record(current_actor(), patient_id, record_id)
    return with_etag(record, record.version)


@blp.route("/<uuid:patient_id>/records/<uuid:record_id>", methods=["PATCH"])
@blp.auth_required()
@blp.arguments(RecordPatch)
@blp.response(200, RecordOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.doc(parameters=[{**IF_MATCH_DOC, "required": True}])
@blp.errors(404, 412, 415, 428)
def update_record(changes, patient_id, record_id):
    """Change a record. If-Match is required; every version is kept."""
    record = records.update_record(current_actor(), patient_id, record_id, changes,
                                   expected_version=if_match_version(required=True))
    return with_etag(record, record.version)


@blp.route("/<uuid:patient_id>/records/<uuid:record_id>/versions", methods=["GET"])
@blp.auth_required()
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(RecordVersionOut))
@blp.errors(404)
def list_record_versions(query, patient_id, record_id):
    """Every version of the record, newest first, with who changed it and when."""
    return records.list_versions(current_actor(), patient_id, record_id, **query)


@doctor_blp.route("/patients", methods=["GET"])
@doctor_blp.auth_required("doctor")
@doctor_blp.arguments(PatientListQuery, location="query")
@doctor_blp.response(200, page_of(PatientOut))
def my_patients(query):
    """Patients who have appointments with you."""
    return patients.list_patients(current_actor(), **query)
