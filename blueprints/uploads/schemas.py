from flask_smorest.fields import Upload as FileField
from marshmallow import fields, validate

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime


class UploadIn(Schema):
    """One multipart/form-data body: the file and the fields that say whose it is."""

    file = FileField(required=True, metadata={"description": "JPEG, PNG, WebP, HEIC, PDF or DICOM; 20 MB at most"})
    patient_id = fields.UUID(required=True)
    consultation_id = fields.UUID()
    record_id = fields.UUID(metadata={"description": "A medical record of this patient to attach the file to"})
    description = fields.String(validate=validate.Length(max=500))


class UploadOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    consultation_id = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    filename = fields.String(required=True)
    description = fields.String(allow_none=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    has_preview = fields.Function(lambda upload: upload.preview_key is not None, required=True)
    quality = fields.Function(lambda upload: (upload.details or {}).get("quality"), allow_none=True,
                              metadata={"description": "For photos: sharpness, exposure, and advice to retake "
                                                       "(no diagnosis)"})
    created_at = UTCDateTime(required=True)


class UploadListQuery(PageQuery):
    patient_id = fields.UUID()
