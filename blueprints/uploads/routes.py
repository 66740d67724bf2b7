from flask import current_app, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from blueprints.uploads.schemas import UploadIn, UploadListQuery, UploadOut
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.offload import run_blocking
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor
from pawmanity.media import uploads

blp = Blueprint("uploads", __name__, url_prefix=f"{API_PREFIX}/uploads",
                description="Clinical images and documents")
# Room for the form fields and multipart framing around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


@blp.before_request
def allow_large_bodies():
    # Only this endpoint takes big bodies; the limit is checked before the body is read (413).
    if request.endpoint == "uploads.create_upload":
        request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"] + MULTIPART_OVERHEAD


@blp.route("", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(UploadIn, location="files")
@blp.response(201, UploadOut)
@blp.errors(404, 413, 415, 429)
def create_upload(form):
    """Upload a file for a patient you may see. Its type is read from its bytes; images are stripped of metadata."""
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    file = form["file"]
    # The parser spooled the file to disk; reading it back is blocking I/O and a copy of megabytes (5 ms of the event
    # loop's time for 8 MB), so on the media pool. All of it: the body's own limit (above) already bounds it, and
    # read(limit + 1) would have CPython allocate the whole limit (20 MB) up front.
    data = run_blocking(file.stream.read)
    if len(data) > limit:
        raise RequestEntityTooLarge(f"Files may be at most {limit // (1024 * 1024)} MB.")
    return uploads.create(current_actor(), patient_id=form["patient_id"], data=data,
                          filename=file.filename, description=form.get("description"),
                          consultation_id=form.get("consultation_id"), record_id=form.get("record_id"))


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(UploadListQuery, location="query")
@blp.response(200, page_of(UploadOut))
def list_uploads(query):
    return uploads.list_uploads(current_actor(), **query)


@blp.route("/<uuid:upload_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, UploadOut)
@blp.errors(404)
def get_upload(upload_id):
    return uploads.get(current_actor(), upload_id)


def _serve(upload, stored, content_type, download_name, *, inline=False):
    response = send_file(stored, mimetype=content_type, as_attachment=not inline, download_name=download_name,
                         conditional=True, etag=upload.sha256, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blp.route("/<uuid:upload_id>/content", methods=["GET"])
@blp.auth_required()
@blp.response(200, content_type="application/octet-stream", description="The file; supports Range requests")
@blp.alt_response(206, description="Partial content (Range)")
@blp.errors(404)
def get_content(upload_id):
    """The file as stored (metadata stripped), after an access and SHA-256 check."""
    upload, stored = uploads.open_content(current_actor(), upload_id)
    return _serve(upload, stored, upload.content_type, upload.filename)


@blp.route("/<uuid:upload_id>/thumbnail", methods=["GET"])
@blp.auth_required()
@blp.response(200, content_type="image/png", description="A PNG preview (a thumbnail, or a DICOM rendering)")
@blp.errors(404)
def get_thumbnail(upload_id):
    upload, stored = uploads.open_content(current_actor(), upload_id, preview=True)
    return _serve(upload, stored, "image/png", f"{upload.filename.rsplit('.', 1)[0]}-preview.png", inline=True)


@blp.route("/<uuid:upload_id>", methods=["DELETE"])
@blp.auth_required()
@blp.response(204)
@blp.errors(403, 404)
def delete_upload(upload_id):
    """Remove from view; the audit trail keeps who deleted what and when."""
    uploads.delete(current_actor(), upload_id)
