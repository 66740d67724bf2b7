from flask import send_file

from blueprints.privacy.schemas import (
    ErasureListQuery,
    ErasureOut,
    ExportIn,
    ExportListQuery,
    ExportOut,
    OwnErasureIn,
    PatientErasureIn,
    RestrictedReadIn,
    RestrictedRecordOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor
from pawmanity.privacy import erasure
from pawmanity.privacy import exports as export_service

exports = Blueprint("exports", __name__, url_prefix=f"{API_PREFIX}/exports",
                    description="Exports of everything held about a patient or about yourself")
erasures = Blueprint("erasures", __name__, url_prefix=f"{API_PREFIX}/erasures",
                     description="Erasure of an account (its owner) or a patient (admins), and the erasure log")


@exports.route("", methods=["POST"])
@exports.auth_required()
@exports.arguments(ExportIn)
@exports.response(202, ExportOut)
@exports.errors(403, 404, 415)
def request_export(data):
    """Export a patient you are a guardian of, or yourself: a job builds one zip archive (a FHIR Bundle, the records
    FHIR does not carry yet, and the uploaded files) that only you can download, for a limited time."""
    return export_service.request_export(current_actor(), **data)


@exports.route("", methods=["GET"])
@exports.auth_required()
@exports.arguments(ExportListQuery, location="query")
@exports.response(200, page_of(ExportOut))
def list_exports(query):
    """Your exports."""
    return export_service.list_exports(current_actor(), **query)


@exports.route("/<uuid:export_id>", methods=["GET"])
@exports.auth_required()
@exports.response(200, ExportOut)
@exports.errors(404)
def get_export(export_id):
    return export_service.get(current_actor(), export_id)


@exports.route("/<uuid:export_id>/archive", methods=["GET"])
@exports.auth_required()
@exports.response(200, content_type="application/zip", description="The archive")
@exports.errors(404, 409, 410)
def download_export(export_id):
    """The archive, for the export's owner only (404 for anyone else), until it expires (then 410)."""
    path = export_service.open_archive(current_actor(), export_id)
    response = send_file(path, mimetype="application/zip", as_attachment=True,
                         download_name=f"pawmanity-export-{export_id}.zip", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@erasures.route("/me", methods=["POST"])
@erasures.auth_required()
@erasures.arguments(OwnErasureIn)
@erasures.response(200, ErasureOut)
@erasures.errors(409, 415, 429, 503)
def erase_me(data):
    """Erase your account now (confirm with your password). Your own patient record, and the patients only you act
    for, are erased with it; their clinical records are held apart for the retention period, then purged."""
    return erasure.erase_own_account(current_actor(), **data)


@erasures.route("/patients/<uuid:patient_id>", methods=["POST"])
@erasures.auth_required()
@erasures.arguments(PatientErasureIn)
@erasures.response(200, ErasureOut)
@erasures.errors(403, 404, 415, 503)
def erase_patient(data, patient_id):
    """Admins: erase a patient. Clinical records are held apart (restricted) until the retention period ends."""
    return erasure.erase_patient_as_admin(current_actor(), patient_id, **data)


@erasures.route("", methods=["GET"])
@erasures.auth_required()
@erasures.arguments(ErasureListQuery, location="query")
@erasures.response(200, page_of(ErasureOut))
@erasures.errors(403)
def list_erasures(query):
    """Admins: the erasure log (what was done, never the erased data)."""
    return erasure.list_erasures(current_actor(), **query)


@erasures.route("/<uuid:erasure_id>", methods=["GET"])
@erasures.auth_required()
@erasures.response(200, ErasureOut)
@erasures.errors(403, 404)
def get_erasure(erasure_id):
    return erasure.get_erasure(current_actor(), erasure_id)


@erasures.route("/<uuid:erasure_id>/break-glass", methods=["POST"])
@erasures.auth_required()
@erasures.arguments(RestrictedReadIn)
@erasures.response(200, RestrictedRecordOut)
@erasures.errors(403, 404, 415)
def read_restricted(data, erasure_id):
    """Admins only: read the restricted records of an erased patient, with a reason written to the audit trail."""
    return erasure.break_glass_read(current_actor(), erasure_id, **data)
