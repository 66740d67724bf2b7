from marshmallow import fields, validate

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime


class ExportIn(Schema):
    patient_id = fields.UUID(metadata={"description": "A patient you are a guardian of; leave out to export "
                                                      "everything about yourself"})


class ExportOut(Schema):
    id = fields.String(required=True)
    subject_type = fields.String(required=True, metadata={"description": "patient | user"})
    subject_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending | ready | failed | expired"})
    requested_at = UTCDateTime(required=True)
    ready_at = UTCDateTime(allow_none=True)
    expires_at = UTCDateTime(allow_none=True, metadata={"description": "The archive is deleted at this time"})
    size = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class ExportListQuery(PageQuery):
    pass


class OwnErasureIn(Schema):
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024),
                             metadata={"description": "Your current password, to confirm"})


class PatientErasureIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=10, max=500),
                           metadata={"description": "Why (kept in the erasure log and the audit trail)"})


class ErasureOut(Schema):
    id = fields.String(required=True)
    subject_type = fields.String(required=True, metadata={"description": "patient | user"})
    subject_id = fields.String(required=True)
    requested_by = fields.String(allow_none=True)
    requested_by_role = fields.String(allow_none=True)
    performed_at = UTCDateTime(required=True)
    actions = fields.Dict(required=True, metadata={"description": "Counts per table: deleted, pseudonymised, "
                                                                  "restricted; files deleted"})
    retain_until = UTCDateTime(allow_none=True, metadata={"description": "When the restricted records are purged"})
    purged_at = UTCDateTime(allow_none=True)


class ErasureListQuery(PageQuery):
    pass


class RestrictedReadIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=10, max=1000),
                           metadata={"description": "Why an admin must read these records; kept in the audit trail"})


class RestrictedRecordOut(Schema):
    erasure_id = fields.String(required=True)
    patient_id = fields.String(required=True)
    restricted_at = UTCDateTime(required=True)
    retain_until = UTCDateTime(required=True)
    content = fields.Dict(required=True, metadata={"description": "bundle (FHIR collection) and records"})
