import json

import marshmallow as ma
from marshmallow import fields, validate

from pawmanity.care.models import RECORD_KINDS, SEXES, SPECIES
from pawmanity.core.schemas import Schema, UTCDateTime

MAX_CHANGES = 1000
MAX_CURSOR = 2 ** 53 - 1  # a JavaScript number, as WatermelonDB keeps `lastPulledAt`
MICROCHIP = validate.Regexp(r"^[0-9A-Za-z]{9,15}$")
# Columns a client echoes back from what it pulled (WatermelonDB pushes whole raw records, with its own `_status` and
# `_changed`): accepted and ignored, since the server alone sets them. Anything else unknown is still refused.
ECHOED = {
    "patients": ("weight_kg", "archived_at", "created_at", "updated_at"),
    "medical_records": ("created_by", "updated_by", "created_at", "updated_at"),
    "notifications": ("kind", "title", "body", "data", "created_at"),
}


def _json_text(attribute):
    def dump(row):
        value = getattr(row, attribute)
        return None if value is None else json.dumps(value)
    return fields.Function(dump, allow_none=True, metadata={"type": "string",
                                                            "description": "JSON, as text (a WatermelonDB @json)"})


# What pulls send: flat raw records, one schema per table ------------------------------------------------------------

class SyncPatient(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    species = fields.String(required=True)
    breed = fields.String(allow_none=True)
    sex = fields.String(required=True)
    date_of_birth = fields.Date(allow_none=True)
    microchip_id = fields.String(allow_none=True)
    weight_kg = fields.Float(allow_none=True)
    archived_at = UTCDateTime(allow_none=True)
    version = fields.Integer(required=True, metadata={"description": "Send it back with a change (push)"})
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)


class SyncMedicalRecord(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    details = fields.String(allow_none=True)
    recorded_at = UTCDateTime(required=True)
    version = fields.Integer(required=True, metadata={"description": "Send it back with a change (push)"})
    created_by = fields.String(allow_none=True)
    updated_by = fields.String(allow_none=True)
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)


class SyncAppointment(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    doctor_id = fields.String(required=True)
    start_at = UTCDateTime(required=True)
    end_at = UTCDateTime(required=True)
    type = fields.String(required=True)
    reason = fields.String(allow_none=True)
    status = fields.String(required=True)
    cancelled_at = UTCDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    late_cancellation = fields.Boolean(required=True)
    created_at = UTCDateTime(required=True)
    updated_at = UTCDateTime(required=True)


class SyncMessage(Schema):
    id = fields.String(required=True)
    consultation_id = fields.String(required=True)
    seq = fields.Integer(required=True)
    sender_id = fields.String(required=True)
    client_id = fields.String(required=True)
    body = fields.String(required=True)
    attachment_ids = _json_text("attachment_ids")
    created_at = UTCDateTime(required=True)


class SyncVital(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    measurement = fields.String(required=True)
    loinc = fields.String(required=True)
    unit = fields.String(required=True)
    value = fields.Float(required=True)
    taken_at = UTCDateTime(required=True)
    source_kind = fields.String(required=True)
    sample_id = fields.String(required=True)
    version = fields.Integer(required=True)
    received_at = UTCDateTime(required=True)


class SyncNotification(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(allow_none=True)
    data = _json_text("data")
    created_at = UTCDateTime(required=True)
    read_at = UTCDateTime(allow_none=True)


RECORD_SCHEMAS = {"patients": SyncPatient, "medical_records": SyncMedicalRecord, "appointments": SyncAppointment,
                  "messages": SyncMessage, "vitals": SyncVital, "notifications": SyncNotification}


def _change_set_out(name, record):
    return Schema.from_dict({
        "created": fields.List(fields.Nested(record), required=True),
        "updated": fields.List(fields.Nested(record), required=True),
        "deleted": fields.List(fields.String(), required=True,
                               metadata={"description": "Ids only: deleted, or no longer yours to see"}),
    }, name=name)


ChangesOut = Schema.from_dict({table: fields.Nested(_change_set_out(f"{record.__name__}Changes", record),
                                                    required=True)
                               for table, record in RECORD_SCHEMAS.items()}, name="SyncChangesOut")


class PullQuery(Schema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_CURSOR), metadata={
        "description": "The `cursor` (= `timestamp`) of your last pull; absent or 0 for a full sync"})


class PullOut(Schema):
    changes = fields.Nested(ChangesOut, required=True)
    cursor = fields.Integer(required=True, metadata={"description": "Opaque: send it back as ?cursor= next time"})
    timestamp = fields.Integer(required=True, metadata={
        "description": "The same value as `cursor`, under the name WatermelonDB's synchronize() reads"})


# What pushes take ---------------------------------------------------------------------------------------------------
# The push body is documented in one piece under PushIn (OPENAPI_INLINE: no `$ref` below it): Postman's import stops
# six levels down (body, changes, table, list, row, column) and would otherwise lose every column of every row.

class _Echoing(Schema):
    """Accepts the columns of `table` a client echoes back and WatermelonDB's bookkeeping, and drops them."""

    OPENAPI_INLINE = True
    table = None
    _status = fields.Raw(allow_none=True, load_only=True)
    _changed = fields.Raw(allow_none=True, load_only=True)

    @ma.post_load
    def drop_echoed(self, data, **kwargs):
        for name in ("_status", "_changed", *ECHOED.get(self.table, ())):
            data.pop(name, None)
        return data


def _echoed(table):
    return {name: fields.Raw(allow_none=True, load_only=True) for name in ECHOED[table]}


def _version():
    return fields.Integer(required=True, validate=validate.Range(min=1, max=2_000_000_000),
                          metadata={"description": "The version you last pulled"})


class _PatientFields(_Echoing):
    table = "patients"
    breed = fields.String(allow_none=True, validate=validate.Length(max=120))
    sex = fields.String(validate=validate.OneOf(SEXES))
    date_of_birth = fields.Date(allow_none=True)
    microchip_id = fields.String(allow_none=True, validate=MICROCHIP)
    locals().update(_echoed("patients"))


class PatientCreate(_PatientFields):
    id = fields.UUID(required=True, metadata={"description": "Chosen by the client (a UUID)"})
    version = fields.Integer(allow_none=True, load_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    species = fields.String(required=True, validate=validate.OneOf(SPECIES))


class PatientUpdate(_PatientFields):
    id = fields.UUID(required=True)
    version = _version()
    name = fields.String(validate=validate.Length(min=1, max=120))
    species = fields.String(validate=validate.OneOf(SPECIES))


class _RecordFields(_Echoing):
    table = "medical_records"
    details = fields.String(allow_none=True, validate=validate.Length(max=20000))
    locals().update(_echoed("medical_records"))


class RecordCreate(_RecordFields):
    id = fields.UUID(required=True, metadata={"description": "Chosen by the client (a UUID)"})
    version = fields.Integer(allow_none=True, load_only=True)
    patient_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(RECORD_KINDS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    recorded_at = UTCDateTime(required=True)


class RecordUpdate(_RecordFields):
    id = fields.UUID(required=True)
    version = _version()
    patient_id = fields.UUID()
    kind = fields.String(validate=validate.OneOf(RECORD_KINDS))
    title = fields.String(validate=validate.Length(min=1, max=200))
    recorded_at = UTCDateTime()


class NotificationUpdate(_Echoing):
    table = "notifications"
    id = fields.UUID(required=True)
    read_at = UTCDateTime(allow_none=True, metadata={"description": "Set to mark it read (it stays read)"})
    locals().update(_echoed("notifications"))


PULL_ONLY = "This table is pulled only: use its own endpoints to change it."
NOTHING = validate.Length(max=0, error=PULL_ONLY)


def _unique_ids(items):
    ids = [str(item["id"] if isinstance(item, dict) else item) for item in items]
    if len(ids) != len(set(ids)):
        raise ma.ValidationError("Each id may appear once per list.")


def _change_set_in(name, created=None, updated=None, deletable=True, deleted_note=""):
    def listing(schema):
        if schema is None:
            return fields.List(fields.Raw(), load_default=list, validate=NOTHING)
        return fields.List(fields.Nested(schema), load_default=list, validate=_unique_ids)

    deleted = fields.List(fields.UUID(), load_default=list, validate=_unique_ids if deletable else NOTHING,
                          metadata={"description": deleted_note} if deleted_note else {})
    change_set = Schema.from_dict({"created": listing(created), "updated": listing(updated), "deleted": deleted},
                                  name=name)
    change_set.OPENAPI_INLINE = True
    return change_set


class ChangesIn(Schema):
    OPENAPI_INLINE = True

    patients = fields.Nested(_change_set_in("SyncPatientsIn", PatientCreate, PatientUpdate,
                                            deleted_note="Archives the patient (primary guardian or admin)"))
    medical_records = fields.Nested(_change_set_in("SyncMedicalRecordsIn", RecordCreate, RecordUpdate,
                                                   deletable=False))
    notifications = fields.Nested(_change_set_in("SyncNotificationsIn", None, NotificationUpdate, deletable=False))
    appointments = fields.Nested(_change_set_in("SyncAppointmentsIn", deletable=False))
    messages = fields.Nested(_change_set_in("SyncMessagesIn", deletable=False))
    vitals = fields.Nested(_change_set_in("SyncVitalsIn", deletable=False))

    @ma.validates_schema
    def not_too_many(self, data, **kwargs):
        count = sum(len(items) for table in data.values() for items in table.values())
        if count > MAX_CHANGES:
            raise ma.ValidationError(f"At most {MAX_CHANGES} changes per push.", "_schema")


class PushIn(Schema):
    changes = fields.Nested(ChangesIn, required=True)


class PushItem(Schema):
    table = fields.String(required=True)
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "created, updated, archived, read or unchanged"})
    version = fields.Integer(allow_none=True)


class PushOut(Schema):
    items = fields.List(fields.Nested(PushItem), required=True)


class ConflictOut(Schema):
    table = fields.String(required=True)
    id = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "version_moved, or id_taken for a create"})
    client_version = fields.Integer(allow_none=True)
    server_version = fields.Integer(allow_none=True)
    server = fields.Dict(allow_none=True, metadata={"description": "The server's current copy, as a pull sends it"})


RESOLVABLE = {"patients": PatientUpdate, "medical_records": RecordUpdate}


def _resolution(update):
    """A resolve's `record`: the update's columns, whose id and version are the request's own (any given here are
    dropped, whatever they are)."""
    ignored = {"allow_none": True, "load_only": True,
               "metadata": {"description": "Ignored: the request's `id` and `version` count"}}
    return type(f"{update.__name__.removesuffix('Update')}Resolution", (update,),
                {"id": fields.Raw(**ignored), "version": fields.Raw(**ignored)})


RESOLUTIONS = {table: _resolution(update) for table, update in RESOLVABLE.items()}


class ResolveIn(Schema):
    table = fields.String(required=True, validate=validate.OneOf(RESOLVABLE))
    id = fields.UUID(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=2_000_000_000), metadata={
        "description": "The server version your merge started from (a conflict's server_version)"})
    record = fields.Dict(required=True, metadata={"description": "The merged copy: the table's columns"})

    # The record's columns depend on the table (load_record reads it with that table's schema).
    OPENAPI = {"oneOf": [{"properties": {"table": {"type": "string", "enum": [table]}, "record": resolution}}
                         for table, resolution in RESOLUTIONS.items()]}

    @ma.post_load
    def load_record(self, data, **kwargs):
        record = {key: value for key, value in data["record"].items() if key not in ("id", "version")}
        try:
            data["record"] = RESOLVABLE[data["table"]]().load(
                {**record, "id": str(data["id"]), "version": data["version"]})
        except ma.ValidationError as error:
            raise ma.ValidationError({"record": error.messages}) from None
        return data


class ResolveOut(Schema):
    table = fields.String(required=True)
    id = fields.String(required=True)
    status = fields.String(required=True)
    version = fields.Integer(allow_none=True)
    record = fields.Dict(required=True)
